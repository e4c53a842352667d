/*
 * pg_stubs.h — what the fuzz harness needs from test/fuzz/pg_stubs.cpp.
 */
#pragma once

/* Frees everything palloc'd since the last call (a memory context reset). */
void fuzz_reset_memory();
/* Reports what went wrong and aborts (libFuzzer records the input). */
[[noreturn]] void fuzz_abort(const char *what);
