# Front door: `make demo` and `make check` (see README.md). Everything real
# happens in CMake; this file only installs build dependencies and drives it.
BUILD   ?= build
SAN     ?= build-san
JOBS    ?= $(shell nproc)

.PHONY: all deps build san demo check bench clean

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

clean:
	rm -rf $(BUILD) $(SAN)
