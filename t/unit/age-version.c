/*
 * age-version - the first header line is judged without reading a byte
 * past it.  In the parser the line sits in a larger buffer, where an
 * over-read goes unnoticed; here each line is in a heap block of exactly
 * its length, so that AddressSanitizer (make SANITIZE=1) sees one.  The
 * check is static in lib/age.c, so this test is compiled with it.
 */
#include "../../lib/age.c"

int
main(void)
{
	static const char *const cases[][2] = {
		{ "", "not an age file" },
		{ "a", "not an age file" },
		{ "age-encryptio", "not an age file" },		/* 13 bytes */
		{ "age-encryption.or", "not an age file" },
		{ "age-encryption.org", "not an age file" },	/* 18 bytes */
		{ "age-encryption.org/", "not an age file" },
		{ "age-encryption.org/v2", "unsupported age version" },
		{ "age-encryption.org/v1 ", "unsupported age version" },
		{ "age-encryption.net/v1", "not an age file" },
	};
	size_t i, n, failed = 0;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *why;
		char *line;

		n = strlen(cases[i][0]);
		line = malloc(n > 0 ? n : 1);
		if (line == NULL)
			return 1;
		memcpy(line, cases[i][0], n);
		why = version_refusal(line, n);
		free(line);
		if (strcmp(why, cases[i][1]) != 0) {
			printf("FAIL '%s': %s, not %s\n", cases[i][0], why,
			    cases[i][1]);
			failed++;
		}
	}
	printf("%zu passed, %zu failed\n", i - failed, failed);
	return failed > 0;
}
