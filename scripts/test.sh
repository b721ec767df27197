#!/usr/bin/env bash
# The full test suite, on a fresh machine or a used one:
#
#   scripts/test.sh [cargo test arguments...]
#
# Sets up .venv with the pinned clients of tests/s3/requirements.txt
# (boto3, the AWS CLI, rclone, pytest, the browser driver), installing only
# when the pins changed or something is missing, installs the Debian
# packages the tests drive if they are missing (as root), then runs
# `cargo test --locked`, whose tests/s3_clients.rs, tests/web.rs and
# tests/chaos.rs run those clients with that Python (SHOAL_PYTHON).
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv
requirements=tests/s3/requirements.txt
stamp=$venv/.installed-requirements

# python3 -m venv needs the venv module and ensurepip (Debian splits them
# into python3-venv).
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get install -y -qq python3-venv >/dev/null 2>&1 ||
      { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq python3-venv >/dev/null; }
  else
    echo "error: python3 cannot make a venv: install python3-venv" >&2
    exit 1
  fi
fi

# A venv left half made (no pip) is made again.
if ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
  rm -rf "$venv"
  python3 -m venv "$venv"
fi

if ! cmp -s "$requirements" "$stamp" ||
  ! "$venv/bin/python" -c 'import boto3, blake3, pytest, requests, websocket' >/dev/null 2>&1 ||
  [ ! -x "$venv/bin/aws" ] || [ ! -x "$venv/bin/rclone" ]; then
  echo "installing the S3 test clients into $venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$stamp"
fi

# The web page's tests load it in headless Chromium (Debian's chromium);
# the monitoring and page tests scrape with curl; the chaos run jumps
# peers' clocks with libfaketime and cuts links with iptables, as do the
# partition tests (each tool:package).
for need in chromium:chromium curl:curl faketime:faketime iptables:iptables nft:nftables; do
  tool=${need%%:*} package=${need#*:}
  command -v "$tool" >/dev/null 2>&1 && continue
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing $package for the tests"
    apt-get install -y -qq "$package" >/dev/null 2>&1 ||
      { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq "$package" >/dev/null; }
  else
    echo "warning: $tool is missing: the tests that need it will fail or skip" >&2
  fi
done

SHOAL_PYTHON="$PWD/$venv/bin/python"
export SHOAL_PYTHON
cargo test --locked "$@"
