#!/usr/bin/env bash
# The project's test command (also what CI runs after scripts/setup.sh):
# format check, clippy with warnings as errors, then the whole test suite.
# Uses cargo-nextest when it is installed, `cargo test` otherwise; the last line
# printed is the test runner's summary.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# rustup installs into ~/.cargo/bin, which a fresh shell may not have on PATH yet.
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi

step() { printf '==> %s\n' "$*" >&2; }

step "cargo fmt --all --check"
cargo fmt --all --check

step "cargo clippy --workspace --all-targets --locked -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

if cargo nextest --version >/dev/null 2>&1; then
    # nextest does not run doctests: run those first so the summary stays last.
    step "cargo test --workspace --locked --doc"
    cargo test --workspace --locked --doc
    step "cargo nextest run --workspace --locked"
    exec cargo nextest run --workspace --locked
else
    step "cargo test --workspace --locked (cargo-nextest not installed)"
    exec cargo test --workspace --locked
fi
