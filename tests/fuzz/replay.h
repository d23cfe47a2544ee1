/*
 * replay.h - the parts of the fuzz drivers' main() that run without
 * libFuzzer: replaying corpus files and seeded random mutations of text
 * seeds, both through the target's LLVMFuzzerTestOneInput(). Linked into
 * the normal builds of tests/fuzz/fuzz_*; a libFuzzer build
 * (-DPOSTERN_LIBFUZZER) does not need it.
 */
#ifndef POSTERN_FUZZ_REPLAY_H
#define POSTERN_FUZZ_REPLAY_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Runs the first MAX bytes of each of the N files PATHS through the target.
 * Returns EXIT_SUCCESS, or EXIT_FAILURE (after a message on stderr) when a
 * file does not open or memory runs out. */
int fuzz_replay_files(int n, char *const *paths, size_t max);

/* How fuzz_mutate_seeds() changes a seed. */
struct fuzz_mutation {
	unsigned rounds;     /* mutated copies of each seed */
	unsigned edits;      /* random edits of each copy */
	size_t grow;         /* how many bytes a copy may grow by */
	const char *replace; /* bytes an edit may write over one of the copy's */
	const char *append;  /* bytes an edit may append */
};

/* Runs ROUNDS mutated copies of each of the N NUL-terminated SEEDS through
 * the target. An edit overwrites a byte with a random one or one of
 * HOW->replace, cuts the copy short or appends one of HOW->append. *STATE
 * is the random generator's state (a linear congruential generator, so
 * runs repeat). Returns 0, or -1 when memory runs out. */
int fuzz_mutate_seeds(const char *const *seeds, size_t n, const struct fuzz_mutation *how,
		      unsigned *state);

/* How fuzz_mutate_lines() changes a seed. */
struct fuzz_line_mutation {
	unsigned inputs;     /* inputs in all, made from the seeds in turn */
	size_t size;         /* the longest input; more than FUZZ_PAD_MAX */
	char pad;            /* a padding edit appends a run of this or of '9' */
	const char *replace; /* NULL, or the bytes (NUL among them) an edit may write over one */
	size_t nreplace;     /* how many bytes REPLACE holds */
};

/* The longest run one padding edit of fuzz_mutate_lines() appends. */
#define FUZZ_PAD_MAX 300

/* Runs HOW->inputs copies of the N NUL-terminated SEEDS (each shorter than
 * HOW->size), taken in turn, through the target, each after four random
 * edits: a byte overwritten with a random one (or one of HOW->replace), a
 * run of padding appended (long lines), the copy cut short, or a random
 * byte appended. *STATE is the linear congruential generator's state, so
 * runs repeat. Returns 0, or -1 when memory runs out. */
int fuzz_mutate_lines(const char *const *seeds, size_t n, const struct fuzz_line_mutation *how,
		      uint32_t *state);

#endif
