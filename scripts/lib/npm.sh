# shellcheck shell=bash
# scripts/lib/npm.sh - sourced by boltseal's developer and CI scripts.
#
# bs_npm_ci DIR installs the npm packages that DIR/package-lock.json pins
# (the tuf-js interop client, tests/interop/tuf-js) into DIR/node_modules.
# Node.js and npm come from Debian (nodejs npm) when either is missing,
# with scripts/lib/deps.sh's bs_apt_install (source deps.sh first). `npm
# ci` runs only when DIR/node_modules is missing or older than
# DIR/package-lock.json, so a second run is silent and fast.
# Debian 12's nodejs is 18.x: the lock file must keep to packages that run
# there (tuf-js 3.x).

# bs_npm_tools: installs Debian's nodejs and npm unless node and npm are
# both on PATH; returns non-zero if that fails.
bs_npm_tools()
{
	local missing=()
	command -v node >/dev/null 2>&1 || missing+=(nodejs)
	command -v npm >/dev/null 2>&1 || missing+=(npm)
	if [ "${#missing[@]}" -eq 0 ]; then
		return 0
	fi
	bs_apt_install bs_npm_tools "${missing[@]}" || return 1
	if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
		echo "bs_npm_tools: node or npm still missing after install" >&2
		return 1
	fi
}

# bs_npm_ci DIR: runs `npm ci` in DIR when DIR/node_modules is missing or
# older than DIR/package-lock.json; returns non-zero on failure. Only a
# finished `npm ci` leaves the stamp node_modules/.bs-npm-ci (and a fresh
# node_modules mtime), so an interrupted or failed one is redone next time.
bs_npm_ci()
{
	local dir=${1:?usage: bs_npm_ci DIR}
	local stamp="$dir/node_modules/.bs-npm-ci"
	if [ ! -f "$dir/package-lock.json" ]; then
		echo "bs_npm_ci: no $dir/package-lock.json" >&2
		return 1
	fi
	bs_npm_tools || return 1
	if [ -f "$stamp" ] && [ ! "$dir/package-lock.json" -nt "$stamp" ] &&
	    [ ! "$dir/package-lock.json" -nt "$dir/node_modules" ]; then
		return 0
	fi
	echo "bs_npm_ci: npm ci in $dir" >&2
	if ! (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) >&2; then
		echo "bs_npm_ci: npm ci failed in $dir" >&2
		return 1
	fi
	touch "$stamp" "$dir/node_modules"
}
