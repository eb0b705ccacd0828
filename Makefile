# Build, package and test ncagent. The work is done by scripts/package and
# scripts/test, so CI and people run the same thing.
#
#   make build   dist/ncagent for this machine, version and commit stamped
#   make deb     dist/ncagent_<version>_<arch>.deb
#   make rpm     dist/ncagent-<version>-1.<arch>.rpm
#   make test    the whole test suite (scripts/test)
#
# VERSION and COMMIT may be set: make deb VERSION=1.2.3

.PHONY: build deb rpm test clean

export VERSION
export COMMIT

build:
	scripts/package build

deb:
	scripts/package deb

rpm:
	scripts/package rpm

test:
	scripts/test

clean:
	rm -rf dist
