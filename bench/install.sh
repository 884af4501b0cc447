#!/usr/bin/env bash
# Install the peer tools and the target server used by bench/run.sh.
# Idempotent: installs only what is missing, and says what it did.
#   apt:   wrk, nginx-light (or nginx), hyperfine, time (GNU time -v)
#   cargo: oha 1.16.0 (only if `oha` is not on PATH; compiles for ~5 min)
# Options (env): NO_OHA=1 skips oha; WITH_SHELLCHECK=1 also installs shellcheck.
set -euo pipefail

OHA_VERSION=${OHA_VERSION:-1.16.0}
installed=()
present=()

if [[ $(id -u) -ne 0 ]]; then
    SUDO=sudo
else
    SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
export PATH="$HOME/.cargo/bin:$PATH"

have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

apt_updated=0
apt_update_once() {
    if [[ $apt_updated -eq 0 ]]; then
        echo "+ apt-get update"
        $SUDO apt-get update -qq
        apt_updated=1
    fi
}
# Candidate version of a package ("" if apt does not know it).
candidate() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}' | grep -v '(none)' || true; }

# Make sure apt's lists exist before asking it anything.
if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
    apt_update_once
fi

# Which nginx flavour: any installed one wins, else nginx-light, else nginx.
nginx_pkg=""
for p in nginx-light nginx nginx-core nginx-full nginx-extras; do
    if have_pkg "$p"; then nginx_pkg=$p; break; fi
done
if [[ -z $nginx_pkg ]]; then
    if [[ -z $(candidate nginx-light) && -z $(candidate nginx) ]]; then apt_update_once; fi
    if [[ -n $(candidate nginx-light) ]]; then nginx_pkg=nginx-light; else nginx_pkg=nginx; fi
fi

wanted=(wrk "$nginx_pkg" hyperfine time)
if [[ ${WITH_SHELLCHECK:-0} == 1 ]]; then wanted+=(shellcheck); fi
missing=()
for p in "${wanted[@]}"; do
    if have_pkg "$p"; then present+=("$p"); else missing+=("$p"); fi
done

if [[ ${#missing[@]} -gt 0 ]]; then
    for p in "${missing[@]}"; do
        if [[ -z $(candidate "$p") ]]; then apt_update_once; break; fi
    done
    # Keep the package's post-install script from starting a system nginx on :80
    # (no init system here); only if no policy-rc.d exists already.
    policy=/usr/sbin/policy-rc.d
    made_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
        $SUDO chmod 755 "$policy"
        made_policy=1
        trap '$SUDO rm -f "$policy"' EXIT
    fi
    echo "+ apt-get install -y ${missing[*]}"
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    if [[ $made_policy -eq 1 ]]; then $SUDO rm -f "$policy"; trap - EXIT; fi
    installed+=("${missing[@]}")
fi

if [[ ${NO_OHA:-0} != 1 ]]; then
    if command -v oha >/dev/null 2>&1; then
        present+=("oha ($(oha --version 2>/dev/null | head -n1))")
    else
        if ! command -v cargo >/dev/null 2>&1; then
            echo "error: cargo not found; install Rust first (or NO_OHA=1)" >&2
            exit 1
        fi
        echo "+ cargo install oha --locked --version $OHA_VERSION   (compiles, ~5 min)"
        cargo install oha --locked --version "$OHA_VERSION"
        installed+=("oha $OHA_VERSION (cargo)")
    fi
fi

echo
echo "installed now: ${installed[*]:-nothing}"
echo "already there: ${present[*]:-nothing}"
echo
echo "versions:"
{
    printf '  wrk:       '; wrk -v 2>&1 | head -n1 || true
    printf '  nginx:     '; nginx -v 2>&1 | head -n1 || true
    printf '  hyperfine: '; hyperfine --version 2>&1 | head -n1 || true
    printf '  time:      '; /usr/bin/time --version 2>&1 | head -n1 || true
    if command -v oha >/dev/null 2>&1; then printf '  oha:       '; oha --version 2>&1 | head -n1; fi
} || true
