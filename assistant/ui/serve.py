"""`python -m assistant.ui.serve run app.py …`: Streamlit's own command line, in a process that starts
loading the assistant (models, index, word segmenter) as the server starts — otherwise Streamlit runs
the app's code, and so loads everything, only when the first browser session arrives.
`python -m assistant app` starts the web interface through this."""

from __future__ import annotations

import logging
import sys
import threading

log = logging.getLogger(__name__)


def preload() -> None:
    try:
        from assistant.ui.common import load_assistant

        load_assistant()
    except Exception:  # the first page load tries again and shows the error where it can be read
        log.exception("预加载失败，将在打开页面时重试")


def main() -> None:
    threading.Thread(target=preload, name="preload-assistant", daemon=True).start()
    from streamlit.web import cli

    sys.argv = ["streamlit", *sys.argv[1:]]
    cli.main(prog_name="streamlit")  # click: exits the process when the server stops


if __name__ == "__main__":
    main()
