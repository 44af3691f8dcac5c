#!/usr/bin/env bash
# Install everything the adapter needs on a fresh Debian machine: Java 17 + Maven (for the local HAPI
# FHIR server), the Python package with its test extras, and the server's jar. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]} from Debian"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3}"
echo "setup: installing the adapter package (pip)"
"$PYTHON" -m pip install -q --disable-pip-version-check -e ".[test]" 2>&1 | grep -v "Running pip as the 'root' user" || true
"$PYTHON" -c "import adapter.cli" # fail early if the install did not take

if [ -f fhir-server/pom.xml ] && [ ! -f fhir-server/target/fhir-server.jar ]; then
  echo "setup: building the local HAPI FHIR server (Maven; the first build downloads ~300 MB)"
  mvn -q -B -f fhir-server/pom.xml package -DskipTests
fi
echo "setup: done"
