/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fuzz target: how the exec provider reads a create command's output (providers/exec/exec.c). The
 * command is configured by the administrator but prints whatever the snapshot tool underneath it
 * prints, so its output is untrusted: the last line is taken as the shadow's location, and it must
 * be a sane string. Checks exec_output_last_line() against the reference (the code it replaced,
 * kept below as it was) and its invariants: the line is a piece of the output, has no newline, and
 * exec_location_check() accepts exactly the non-empty lines shorter than PATH_MAX.
 */

#include <errno.h>
#include <limits.h>

#include "providers/exec/exec.h"
#include "fuzz/fuzz.h"

/* The original in-place parsing of provider_run_command(), before it became a function. */
static char *reference_last_line(const uint8_t *data, size_t size) {
        char *out = malloc(size + 1);
        size_t len = size;
        if (!out)
                abort();
        if (size)
                memcpy(out, data, size);
        out[len] = 0;
        while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == '\r' || out[len - 1] == ' '))
                out[--len] = 0;
        char *last = strrchr(out, '\n');
        char *line = strdup(last ? last + 1 : out);
        free(out);
        if (!line)
                abort();
        return line;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        /* Exactly size bytes, no terminator: the parser must not read past them. */
        char *buf = malloc(size ? size : 1);
        char *line = NULL;
        if (!buf)
                abort();
        if (size)
                memcpy(buf, data, size);

        int r = exec_output_last_line(buf, size, &line);
        fuzz_assert(r == 0 && line, "exec_output_last_line: %d", r);
        size_t n = strlen(line);
        fuzz_assert(n <= size, "line of %zu bytes from %zu", n, size);
        fuzz_assert(!strchr(line, '\n'), "the line has a newline");
        fuzz_assert(n == 0 || memmem(buf, size, line, n), "the line is not in the output");
        if (!memchr(buf, 0, size))
                fuzz_assert(n == 0 || !strchr("\n\r ", line[n - 1]), "trailing blank kept: 0x%02x",
                            (unsigned char) line[n - 1]);

        char *ref = reference_last_line(data, size);
        fuzz_assert(strcmp(ref, line) == 0, "differs from the original parsing:\n  got:      '%s'\n  expected: '%s'",
                    line, ref);
        free(ref);

        r = exec_location_check(line);
        fuzz_assert(r == 0 || r == -EBADMSG, "exec_location_check: %d", r);
        fuzz_assert((r == 0) == (n > 0 && n < PATH_MAX), "exec_location_check(%zu bytes) = %d", n, r);

        free(line);
        free(buf);
        return 0;
}
