"""Settings, from the environment (KALKAN_*) with command-line overrides.

Everything has a safe default so `python -m server` runs on a fresh machine: SQLite in a data
directory, loopback only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

MAX_BODY_BYTES = 64 * 1024  # request bodies over this are refused (413)
MAX_HASHES_PER_REQUEST = 500
MAX_HASHES_PER_CASE = 5000  # documented in docs/api.md
MIN_PDQ_QUALITY = 50  # below this an image has too little detail to be recognised reliably
MAX_PIN_FAILURES = 10  # wrong PINs before a case number is locked
LOCK_BASE_SECONDS = 3600  # first lock: an hour; each further lock doubles it ...
LOCK_MAX_SECONDS = 7 * 24 * 3600  # ... up to a week


@dataclass(frozen=True)
class Settings:
    database_url: str
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8000
    # Requests per minute one client (by salted address hash, memory only) may make to /api and
    # the case page's POSTs; 0 turns the limit off (benchmarks on loopback).
    rate_limit_per_minute: int = 120
    # Partner API requests per minute per partner (memory only, per process); a full sync of a
    # million hashes is about 1,250 requests. 0 turns it off.
    partner_rate_limit_per_minute: int = 6000
    # Argon2id for PINs: one pass over 2 MiB, ~1.2 ms per hash here. PINs are 50 random bits,
    # not chosen by people, so even this puts an offline search of a stolen database at ~40,000
    # CPU-years per case (2^49 guesses on average), and memory-hardness keeps GPUs from making
    # that cheap; more passes would only buy a PIN that is never reused anywhere a few more
    # years, at the price of the server's throughput (every creation and every PIN check pays
    # it). Online guessing is stopped by the lockout, not by this cost.
    argon2_time_cost: int = 1
    argon2_memory_kib: int = 2048
    argon2_parallelism: int = 1
    extra: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def from_env(env: dict[str, str] | None = None) -> "Settings":
        env = dict(os.environ if env is None else env)
        data_dir = Path(env.get("KALKAN_DATA_DIR") or REPO_ROOT / "data")
        url = env.get("KALKAN_DATABASE_URL") or f"sqlite+aiosqlite:///{data_dir / 'kalkan.db'}"
        return Settings(
            database_url=url,
            data_dir=data_dir,
            host=env.get("KALKAN_HOST", "127.0.0.1"),
            port=int(env.get("KALKAN_PORT", "8000")),
            rate_limit_per_minute=int(env.get("KALKAN_RATE_LIMIT_PER_MINUTE", "120")),
            partner_rate_limit_per_minute=int(env.get("KALKAN_PARTNER_RATE_LIMIT_PER_MINUTE", "6000")),
        )

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
