/*
 * carry.h - the consent headers a message carries from its sender to
 * each recipient's server: Smimp-Work (proofs of work, lib/work.h) and
 * Smimp-Introduction (introductions, read by their own module).  This
 * module checks their form, splits the proofs and the introductions by
 * domain for the relay queue, and gives the value of a recipient's
 * proof; submission.c and
 * inbound.c pass that value to the consent decision.
 */
#ifndef SMIMPD_CARRY_H
#define SMIMPD_CARRY_H

#include <stddef.h>

#include "address.h"
#include "introduction.h"

/*
 * Is v a Smimp-Introduction value as it may be carried: 1 to
 * INTRO_LIST_MAX bytes of unpadded base64url items, joined by commas,
 * none empty?  What each item says is checked where it is used.
 */
int carry_introduction_ok(const char *v);
/*
 * The statements of v (carry_introduction_ok) to recipients of domain,
 * in their order, as a Smimp-Introduction value of their own in *out
 * (malloc'd), or NULL when v has none: so that no domain learns who
 * else a message went to.  One that does not parse goes nowhere (it
 * would introduce nobody).  -1 out of memory.
 */
int carry_introduction_for_domain(const char *v, const char *domain,
    char **out);
/*
 * Is v a Smimp-Work value (work_header_check) whose every proof names
 * one of the n addresses of rcpts (normalized)?
 */
int carry_work_ok(const char *v, const char (*rcpts)[ADDRESS_MAX + 1],
    size_t n);
/* The same, the addresses an entry of the comma-separated list. */
int carry_work_ok_in(const char *v, const char *list);
/*
 * The proofs of v for recipients of domain, as a Smimp-Work value of
 * their own in *out (malloc'd), or NULL when v names none of them.
 * -1 out of memory.
 */
int carry_work_for_domain(const char *v, const char *domain, char **out);
/*
 * The value of the proof that v (checked, or NULL) gives recipient,
 * under the message's stamp hash sh; 0 when it gives none.
 */
unsigned int carry_work_bits(const char *v, const unsigned char sh[32],
    const char *recipient);

#endif
