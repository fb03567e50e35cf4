# mk/bench.mk -- the benchmark suite (scripts/bench/run).
# Included at the end of the Makefile (`-include mk/bench.mk`).
#
#   make bench         the full suite, about 10 minutes on a 2-vCPU VM
#   make bench-quick   the same parts with smaller counts, about two minutes
#   make bench-smoke   every part with tiny counts (< 60 s); CI runs it with
#                      the C checks (ccheck)
#
# Each prints the tables and the targets table and writes
# $(BUILD)/bench/results.json; bench and bench-quick also draw PNG charts
# into $(BUILD)/bench/ (bench-roundtrip.png, bench-throughput.png,
# bench-numpy.png; matplotlib, which scripts/install-deps installs).  The script starts its own xichand (a
# throw-away namespace and runtime dir) and stops it; it needs the normal
# build (binaries, build/bench/*, the extension for the newest Python), which
# `all` gives.  A part that fails makes the target fail; a target not met
# does not (the numbers are the report).
#
# Decision: the sanitizer builds (make asan: BUILD=build-asan ccheck) do not
# run the smoke -- their binaries are slowed by the sanitizers and the
# extension belongs to the normal build -- as with mk/fuzz.mk.

BENCH_SCRIPT := scripts/bench/run

bench: all
	$(Q)BUILD=$(BUILD) $(BENCH_SCRIPT) --charts $(BUILD)/bench

bench-quick: all
	$(Q)BUILD=$(BUILD) $(BENCH_SCRIPT) --quick --charts $(BUILD)/bench

bench-smoke: all
	$(Q)BUILD=$(BUILD) $(BENCH_SCRIPT) --smoke --json $(BUILD)/bench/results-smoke.json

ifeq ($(SANITIZE),)
ccheck: bench-smoke
endif

.PHONY: bench bench-quick bench-smoke
