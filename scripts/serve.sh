#!/usr/bin/env bash
# Builds ferrocast (release) and runs `ferrocast serve` with any arguments given, e.g.
#   bash scripts/serve.sh --config samples/ferrocast.toml
# It is `cargo run --release --locked -- serve "$@"` with rustup's cargo on PATH (a
# shell opened before scripts/setup.sh installed Rust does not have it yet).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
exec cargo run --release --locked --bin ferrocast -- serve "$@"
