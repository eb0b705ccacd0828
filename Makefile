# Build, package and test ncagent. The work is done by scripts/package and
# scripts/test, so CI and people run the same thing.
#
#   make build   dist/ncagent for this machine, version and commit stamped
#   make install dist/ncagent into $(PREFIX)/bin (default ~/.local/bin), with
#                the man page and shell completions under $(PREFIX)/share
#   make deb     dist/ncagent_<version>_<arch>.deb
#   make rpm     dist/ncagent-<version>-1.<arch>.rpm
#   make test    the whole test suite (scripts/test)
#
# VERSION and COMMIT may be set: make deb VERSION=1.2.3

.PHONY: build install deb rpm test clean

export VERSION
export COMMIT

PREFIX ?= $(HOME)/.local

build:
	scripts/package build

install: build
	install -D -m 0755 dist/ncagent $(DESTDIR)$(PREFIX)/bin/ncagent
	install -d $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/bash-completion/completions \
		$(DESTDIR)$(PREFIX)/share/zsh/site-functions $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
	dist/ncagent man >$(DESTDIR)$(PREFIX)/share/man/man1/ncagent.1
	dist/ncagent completion bash >$(DESTDIR)$(PREFIX)/share/bash-completion/completions/ncagent
	dist/ncagent completion zsh >$(DESTDIR)$(PREFIX)/share/zsh/site-functions/_ncagent
	dist/ncagent completion fish >$(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/ncagent.fish
	@echo "installed $(DESTDIR)$(PREFIX)/bin/ncagent: make sure $(PREFIX)/bin is on your PATH"

deb:
	scripts/package deb

rpm:
	scripts/package rpm

test:
	scripts/test

clean:
	rm -rf dist
