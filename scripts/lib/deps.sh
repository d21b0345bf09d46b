# shellcheck shell=bash
# scripts/lib/deps.sh - sourced by boltseal's developer and CI scripts.
#
# bs_install_deps installs the Debian packages boltseal needs to build and
# test, and only those that are missing: dpkg-query is asked first, so a
# second run is silent and fast, and `apt-get update` runs only when
# something has to be installed. Uses sudo when not root.

BS_DEPS_PACKAGES=(
	build-essential autoconf automake pkg-config libssl-dev libevent-dev
	libnghttp2-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler
	libp11-kit-dev p11-kit softhsm2 libsqlite3-dev libcmocka-dev
	python3-grpcio python3-cryptography python3-pykcs11 python3-protobuf
	python3-pytest opensc nghttp2-client nghttp2-proxy openssl sqlite3
	golang-go golang-golang-x-mod-dev clang libclang-rt-14-dev
	libjansson-dev python3-securesystemslib python3-jwcrypto
	libcbor-dev python3-cbor2
	liboath-dev oathtool python3-pyotp libqrencode-dev libedit-dev python3-pexpect
	zbar-tools python3-pil libgit2-dev libarchive-dev libtool zlib1g-dev prometheus
)

# bs_missing_deps: prints the packages of BS_DEPS_PACKAGES not installed.
bs_missing_deps()
{
	local pkg status
	for pkg in "${BS_DEPS_PACKAGES[@]}"; do
		status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
		if [ "$status" != "installed" ]; then
			printf '%s\n' "$pkg"
		fi
	done
}

# bs_apt_install WHO PKG...: apt-get update and install of PKG... (as root,
# or through sudo, which never waits for a password without a terminal);
# WHO names the caller in messages. Returns non-zero if apt-get fails.
bs_apt_install()
{
	local who=$1 sudo=()
	shift
	if [ "$(id -u)" -ne 0 ]; then
		if ! command -v sudo >/dev/null 2>&1; then
			echo "$who: missing packages ($*) and no sudo; install them as root" >&2
			return 1
		fi
		# Without a terminal (CI, no stdin) sudo must not wait for a password.
		if [ -t 0 ]; then
			sudo=(sudo)
		else
			sudo=(sudo -n)
		fi
	fi
	echo "$who: installing $*" >&2
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || return 1
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends "$@" >&2
}

# bs_install_deps: installs whatever bs_missing_deps reports; returns
# non-zero if apt-get fails or packages are still missing afterwards.
bs_install_deps()
{
	local missing
	mapfile -t missing < <(bs_missing_deps)
	if [ "${#missing[@]}" -eq 0 ]; then
		return 0
	fi
	bs_apt_install bs_install_deps "${missing[@]}" || return 1
	mapfile -t missing < <(bs_missing_deps)
	if [ "${#missing[@]}" -ne 0 ]; then
		echo "bs_install_deps: still missing after install: ${missing[*]}" >&2
		return 1
	fi
}

# bs_autoreconf_if_needed SRCDIR: runs autoreconf -fi when configure is
# missing or older than configure.ac or Makefile.am.
bs_autoreconf_if_needed()
{
	local src=$1
	if [ ! -x "$src/configure" ] || [ "$src/configure.ac" -nt "$src/configure" ] ||
	    [ "$src/Makefile.am" -nt "$src/configure" ]; then
		echo "autoreconf -fi in $src" >&2
		(cd "$src" && autoreconf -fi) >&2
	fi
}
