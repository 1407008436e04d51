#!/usr/bin/env bash
# Set up a development environment from a clean checkout: Debian packages for PDF letters and
# their checks, a virtual environment in .venv, and the package with its test dependencies.
# Safe to run again; it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

debian_packages=(
    fonts-hosny-amiri   # Amiri: Latin and Arabic glyphs for the letters
    fonts-dejavu-core   # DejaVu Sans: the fallback named in every CSS rule
    libpango-1.0-0      # WeasyPrint's text layout
    libpangoft2-1.0-0
    libharfbuzz0b
    poppler-utils       # pdftotext and pdftoppm, used by the tests
    chromium            # headless browser for the dashboard tests
)
missing=()
for package in "${debian_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$package")
done
if ((${#missing[@]})); then
    sudo_cmd=()
    [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}"
fi

python=${PYTHON:-python3}
[[ -x .venv/bin/python ]] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
