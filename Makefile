# Front door: `make demo` and `make check` (see README.md). Everything real
# happens in CMake; this file only installs build dependencies and drives it.
BUILD   ?= build
SAN     ?= build-san
JOBS    ?= $(shell nproc)

PREFIX  ?= /usr/local
DESTDIR ?=
DEBOUT  ?= $(CURDIR)/build-deb

.PHONY: all deps build san demo check bench install deb clean

all: build

deps:
	@scripts/deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j$(JOBS)

san: deps
	cmake -S . -B $(SAN) -DCMAKE_BUILD_TYPE=Sanitize >/dev/null
	cmake --build $(SAN) -j$(JOBS)

demo: build
	scripts/demo.sh $(BUILD)

check: build san
	cd $(BUILD) && ctest --output-on-failure --timeout 600
	cd $(SAN) && MIG_SANITIZE=1 ctest --output-on-failure --timeout 900

bench: build
	bench/run.sh $(BUILD)

# make install [DESTDIR=/staging] [PREFIX=/usr]: daemon, CLI, shared
# libraries, headers, pkg-config files, man pages, units, completion.
install: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	cmake --build $(BUILD) -j$(JOBS)
	DESTDIR="$(DESTDIR)" cmake --install $(BUILD)

# The Debian packages, built offline from a copy of the tree, in $(DEBOUT).
deb: deps
	scripts/build-deb.sh $(DEBOUT)

clean:
	rm -rf $(BUILD) $(SAN) $(DEBOUT)
