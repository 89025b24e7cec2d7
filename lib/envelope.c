/*
 * envelope.c - build and parse the envelope header; hash and sign.
 * The byte format is in doc/PROTOCOL.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "envelope.h"
#include "exitcode.h"
#include "idlog.h"
#include "padding.h"
#include "banned.h"

#define ENV_SIG_CONTEXT	"smimp/1 envelope-signature"
#define ENV_MAX_LINE	MSG_MAX_HEADER

static const unsigned char leaf_personal[16] = "smimp/1 leaf";
static const unsigned char root_personal[16] = "smimp/1 root";

void
env_leaf(unsigned char out[ENV_LEAF_SIZE], const unsigned char *data,
    size_t len)
{
	crypto_generichash_blake2b_salt_personal(out, ENV_LEAF_SIZE, data, len,
	    NULL, 0, NULL, leaf_personal);
}

void
env_root_init(struct env_root *r)
{
	crypto_generichash_blake2b_init_salt_personal(&r->st, NULL, 0, 32,
	    NULL, root_personal);
	r->leaves = 0;
}

void
env_root_add(struct env_root *r, const unsigned char leaf[ENV_LEAF_SIZE])
{
	crypto_generichash_update(&r->st, leaf, ENV_LEAF_SIZE);
	r->leaves++;
}

void
env_root_final(struct env_root *r, uint64_t signed_len, unsigned char out[32])
{
	unsigned char be[8];
	int i;

	for (i = 0; i < 8; i++)
		be[i] = (unsigned char)(signed_len >> (56 - 8 * i));
	crypto_generichash_update(&r->st, be, sizeof(be));
	crypto_generichash_final(&r->st, out, 32);
}

static void
sig_input(unsigned char m[sizeof(ENV_SIG_CONTEXT) + 32],
    const unsigned char root[32])
{
	memcpy(m, ENV_SIG_CONTEXT, sizeof(ENV_SIG_CONTEXT));
	memcpy(m + sizeof(ENV_SIG_CONTEXT), root, 32);
}

void
env_sign(unsigned char sig[ENV_SIG_SIZE], const unsigned char root[32],
    const unsigned char identity_secret[64])
{
	unsigned char m[sizeof(ENV_SIG_CONTEXT) + 32];

	sig_input(m, root);
	crypto_sign_detached(sig, NULL, m, sizeof(m), identity_secret);
}

int
env_verify(const unsigned char sig[ENV_SIG_SIZE], const unsigned char root[32],
    const unsigned char identity_public[32])
{
	unsigned char m[sizeof(ENV_SIG_CONTEXT) + 32];

	sig_input(m, root);
	return crypto_sign_verify_detached(sig, m, sizeof(m), identity_public);
}

/* A media type and its parameters: 1 to 200 bytes of printable ASCII. */
static int
content_type_ok(const char *s, size_t len)
{
	return printable_ascii(s, len, MSG_MAX_CONTENT_TYPE);
}

static int
type_ok(const char *t)
{
	size_t i, len = strlen(t);

	if (strcmp(t, "email") == 0 || strcmp(t, "short-message") == 0 ||
	    strcmp(t, MSG_TYPE_NOTICE) == 0)
		return 1;
	if (len < 3 || len > MSG_TYPE_MAX || strncmp(t, "x-", 2) != 0)
		return 0;
	for (i = 2; i < len; i++)
		if (!((t[i] >= 'a' && t[i] <= 'z') ||
		    (t[i] >= '0' && t[i] <= '9') || t[i] == '-' ||
		    t[i] == '.' || t[i] == '_'))
			return 0;
	return 1;
}

static const char *
default_content_type(const char *type)
{
	if (strcmp(type, "email") == 0)
		return "text/markdown; charset=utf-8";
	if (strcmp(type, "short-message") == 0 ||
	    strcmp(type, MSG_TYPE_NOTICE) == 0)
		return "text/plain; charset=utf-8";
	return "application/octet-stream";
}

static void
new_message_id(char *out, size_t cap, const char *from)
{
	static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";
	unsigned char rnd[15];
	char id[25];
	size_t i;

	randombytes_buf(rnd, sizeof(rnd));
	for (i = 0; i < 24; i++) {
		size_t bit = i * 5, byte = bit / 8, off = bit % 8;
		unsigned int v = (unsigned int)rnd[byte] << 8;

		if (byte + 1 < sizeof(rnd))
			v |= rnd[byte + 1];
		id[i] = b32[(v >> (11 - off)) & 31];
	}
	id[24] = '\0';
	/*
	 * A message id is at most MESSAGE_ID_MAX bytes (message_id_valid()):
	 * past that the domain is left off, the random part alone being
	 * unique.
	 */
	if (strlen(id) + 1 + strlen(address_domain(from)) > MESSAGE_ID_MAX)
		(void)snprintf(out, cap, "%s", id);
	else
		(void)snprintf(out, cap, "%s@%s", id, address_domain(from));
}

static int
add_recipients(struct sbuf *sb, const struct seal_params *p, int cc)
{
	char fp[FINGERPRINT_STRLEN];
	size_t i;

	for (i = 0; i < p->nrcpts; i++) {
		if (p->rcpts[i].cc != cc)
			continue;
		fingerprint_format(p->rcpts[i].fingerprint, fp);
		if (sbuf_addf(sb, "%s: %s %s\n", cc ? "cc" : "to",
		    p->rcpts[i].address, fp) != 0)
			return -1;
	}
	return 0;
}

/*
 * forward-secret lines: each recipient sealed to one-time prekeys for
 * all of its keys, in the order of the to and cc lines.
 */
static int
add_forward_secret(struct sbuf *sb, const struct seal_params *p)
{
	size_t i;
	int cc;

	for (cc = 0; cc < 2; cc++)
		for (i = 0; i < p->nrcpts; i++)
			if (p->rcpts[i].cc == cc && p->rcpts[i].forward_secret &&
			    sbuf_addf(sb, "forward-secret: %s\n",
			    p->rcpts[i].address) != 0)
				return -1;
	return 0;
}

/* Is address one of p's recipients, to or cc? */
static int
is_recipient(const struct seal_params *p, const char *address)
{
	size_t i;

	for (i = 0; i < p->nrcpts; i++)
		if (strcmp(p->rcpts[i].address, address) == 0)
			return 1;
	return 0;
}

/*
 * The introductions a sealer may carry: each of the sender, to one of
 * the recipients, at most one for each, in force at when, and all of
 * them, encoded and joined by commas, within INTRO_LIST_MAX bytes, so
 * that smimp-send can always copy them into its header.
 */
static int
intros_check(const struct seal_params *p, int64_t when,
    struct smimp_err *err)
{
	const char *from = p->sender_log->address;
	size_t i, j, total = 0;

	for (i = 0; i < p->nintros; i++) {
		const struct introduction *in = &p->intros[i];

		if (!is_recipient(p, in->to))
			return smimp_err_set(err, SMIMP_EXIT_USAGE, "the "
			    "introduction by %s is to %s, not a recipient",
			    in->introducer, in->to);
		if (introduction_check(in, from, in->to, when, err) != 0)
			return -1;
		for (j = 0; j < i; j++)
			if (strcmp(p->intros[j].to, in->to) == 0)
				return smimp_err_set(err, SMIMP_EXIT_USAGE,
				    "two introductions to %s: one is enough",
				    in->to);
		total += introduction_encoded_len(in) + 1;
	}
	if (total > INTRO_LIST_MAX + 1)
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "introductions "
		    "of more than %d bytes, encoded", INTRO_LIST_MAX);
	return 0;
}

/*
 * The parts a sealer may write: attachments, at most PART_MAX, each
 * name and type as part.h says and every name once, so that nothing a
 * reader would refuse is ever signed.
 */
static int
parts_check(const struct seal_params *p, struct smimp_err *err)
{
	const char *why;
	size_t i, j;

	if (p->nparts > PART_MAX)
		return smimp_err_set(err, SMIMP_EXIT_USAGE, "too many "
		    "attachments (at most %d)", PART_MAX);
	for (i = 0; i < p->nparts; i++) {
		const struct msg_part *pt = &p->parts[i];

		why = part_name_problem(pt->name, strlen(pt->name));
		if (strcmp(pt->kind, PART_ATTACHMENT) != 0)
			return smimp_err_set(err, SMIMP_EXIT_USAGE, "a part of "
			    "kind '%.40s': a sealer writes attachments only",
			    pt->kind);
		if (why != NULL)
			return smimp_err_set(err, SMIMP_EXIT_USAGE, "invalid "
			    "attachment name: it %s", why);
		if (!part_type_valid(pt->type, strlen(pt->type)))
			return smimp_err_set(err, SMIMP_EXIT_USAGE, "invalid "
			    "attachment type '%.80s' for '%s': type/subtype "
			    "in lower case, then ;name=value parameters, no "
			    "space, at most %d bytes", pt->type, pt->name,
			    PART_TYPE_MAX);
		if (pt->size > PART_SIZE_MAX)
			return smimp_err_set(err, SMIMP_EXIT_USAGE, "the "
			    "attachment '%s' is larger than 2^50 bytes",
			    pt->name);
		for (j = 0; j < i; j++)
			if (strcmp(p->parts[j].name, pt->name) == 0)
				return smimp_err_set(err, SMIMP_EXIT_USAGE,
				    "two attachments named '%s'", pt->name);
	}
	return 0;
}

static int
add_parts(struct sbuf *sb, const struct seal_params *p)
{
	size_t i;

	for (i = 0; i < p->nparts; i++)
		if (part_line_add(sb, &p->parts[i]) != 0)
			return -1;
	return 0;
}

static int
add_intros(struct sbuf *sb, const struct seal_params *p)
{
	size_t i;

	for (i = 0; i < p->nintros; i++)
		if (sbuf_add(sb, "introduction: ", 14) != 0 ||
		    introduction_encode(&p->intros[i], sb) != 0 ||
		    sbuf_add(sb, "\n", 1) != 0)
			return -1;
	return 0;
}

int
env_header_build(struct sbuf *sb, const struct seal_params *p,
    char *message_id, size_t message_id_cap, struct smimp_err *err)
{
	const struct idlog *log = p->sender_log;
	char fp[FINGERPRINT_STRLEN], when[TIME_STRLEN], mid[256];

	if (!type_ok(p->type))
		return smimp_err_set(err, SMIMP_EXIT_USAGE,
		    "invalid message type '%.80s': use email, short-message "
		    "or x-<name>", p->type);
	if (p->subject != NULL && (strlen(p->subject) > MSG_MAX_SUBJECT ||
	    !text_value_ok(p->subject, strlen(p->subject))))
		return smimp_err_set(err, SMIMP_EXIT_USAGE,
		    "invalid subject: at most %d bytes of UTF-8 text on one "
		    "line", MSG_MAX_SUBJECT);
	if (p->content_type != NULL && !content_type_ok(p->content_type,
	    strlen(p->content_type)))
		return smimp_err_set(err, SMIMP_EXIT_USAGE,
		    "invalid content type: 1 to %d bytes of printable ASCII",
		    MSG_MAX_CONTENT_TYPE);
	if ((p->thread_id != NULL && !message_id_valid(p->thread_id)) ||
	    (p->in_reply_to != NULL && !message_id_valid(p->in_reply_to)))
		return smimp_err_set(err, SMIMP_EXIT_USAGE,
		    "invalid thread or reply id: 1 to %d of A-Z a-z 0-9 and "
		    "._@+=:-", MESSAGE_ID_MAX);
	if (p->nrcpts == 0 || p->nrcpts > MSG_MAX_RECIPIENTS)
		return smimp_err_set(err, SMIMP_EXIT_USAGE,
		    "between 1 and %d recipients are needed",
		    MSG_MAX_RECIPIENTS);
	if (intros_check(p, p->date != 0 ? p->date : time_now(), err) != 0 ||
	    parts_check(p, err) != 0)
		return -1;
	new_message_id(mid, sizeof(mid), log->address);
	fingerprint_format(log->fingerprint, fp);
	time_format(p->date != 0 ? p->date : time_now(), when);
	if (sbuf_addf(sb, "%stype: %s\nfrom: %s\nfrom-fingerprint: %s\n"
	    "from-log-head: ", ENV_MAGIC, p->type, log->address, fp) ||
	    sbuf_add_b64(sb, log->head, 32) || sbuf_add(sb, "\n", 1) ||
	    (p->sender != NULL && p->sender->is_device &&
	    sbuf_addf(sb, "from-device: %s\n", p->sender->device)) ||
	    add_recipients(sb, p, 0) || add_recipients(sb, p, 1) ||
	    add_forward_secret(sb, p) ||
	    sbuf_addf(sb, "date: %s\nmessage-id: %s\nthread-id: %s\n", when,
	    mid, p->thread_id != NULL ? p->thread_id : mid) ||
	    (p->in_reply_to != NULL &&
	    sbuf_addf(sb, "in-reply-to: %s\n", p->in_reply_to)) ||
	    (p->subject != NULL &&
	    sbuf_addf(sb, "subject: %s\n", p->subject)) ||
	    sbuf_addf(sb, "content-type: %s\n", p->content_type != NULL ?
	    p->content_type : default_content_type(p->type)) ||
	    add_parts(sb, p) || (!p->no_padding &&
	    sbuf_addf(sb, "padding: %s\n", PAD_SCHEME)) ||
	    sbuf_add(sb, "sender-log: ", 12) ||
	    sbuf_add_b64(sb, log->raw, log->raw_len) ||
	    sbuf_add(sb, "\n", 1) || add_intros(sb, p) ||
	    sbuf_add(sb, "\n", 1))
		return smimp_err_set(err, SMIMP_EXIT_FAIL,
		    "envelope header too large");
	if (message_id != NULL)
		(void)snprintf(message_id, message_id_cap, "%s", mid);
	return 0;
}

void
msg_meta_release(struct msg_meta *meta)
{
	idlog_release(&meta->sender);
	free(meta->rcpts);
	free(meta->intros);
	for (size_t i = 0; i < meta->nparts; i++)
		free(meta->parts[i].path);
	free(meta->parts);
	free(meta->header_text);
	memset(meta, 0, sizeof(*meta));
}

static int
malformed(struct smimp_err *err, const char *what)
{
	return smimp_err_set(err, SMIMP_EXIT_BADMSG,
	    "malformed envelope: %s", what);
}

static int
copy_value(const struct kv_line *kv, char *out, size_t cap)
{
	if (!text_value_ok(kv->value, kv->value_len))
		return -1;
	return kv_value_copy(kv, out, cap);
}

/* A message, thread or reply id, as message_id_valid() says. */
static int
copy_id(const struct kv_line *kv, char *out, size_t cap)
{
	if (kv_value_copy(kv, out, cap) != 0 || !message_id_valid(out))
		return -1;
	return 0;
}

/* A fingerprint as written (section 2): no other case, spacing. */
static int
fingerprint_exact(const char *s, unsigned char fp[FINGERPRINT_SIZE])
{
	char back[FINGERPRINT_STRLEN];

	if (fingerprint_parse(s, fp) != 0)
		return -1;
	fingerprint_format(fp, back);
	return strcmp(back, s) == 0 ? 0 : -1;
}

static int
parse_recipient(const struct kv_line *kv, struct msg_meta *meta, int cc)
{
	struct msg_recipient *r;
	struct smimp_err aerr;
	char buf[ADDRESS_MAX + FINGERPRINT_STRLEN + 2], *sp;

	if (kv_value_copy(kv, buf, sizeof(buf)) != 0)
		return -1;
	sp = strchr(buf, ' ');
	if (sp == NULL)
		return -1;
	*sp = '\0';
	r = realloc(meta->rcpts, (meta->nrcpts + 1) * sizeof(*r));
	if (r == NULL)
		return -1;
	meta->rcpts = r;
	r += meta->nrcpts;
	memset(r, 0, sizeof(*r));
	if (address_normalize(buf, r->address, &aerr) != 0 ||
	    strcmp(buf, r->address) != 0 ||
	    fingerprint_exact(sp + 1, r->fingerprint) != 0)
		return -1;
	r->cc = cc;
	meta->nrcpts++;
	return 0;
}

/*
 * One forward-secret line: a recipient that the to and cc lines name
 * after the one the line before named (so each once, in their order).
 * *next: where in meta->rcpts the next may be found.
 */
static int
parse_forward_secret(const struct kv_line *kv, struct msg_meta *meta,
    size_t *next)
{
	char addr[ADDRESS_MAX + 1];
	size_t i;

	if (kv_value_copy(kv, addr, sizeof(addr)) != 0)
		return -1;
	for (i = *next; i < meta->nrcpts; i++) {
		if (strcmp(meta->rcpts[i].address, addr) != 0)
			continue;
		meta->rcpts[i].forward_secret = 1;
		*next = i + 1;
		return 0;
	}
	return -1;
}

/*
 * One introduction line: a well-formed statement, encoded once, the
 * encoded statements with their commas (as smimp-send copies them into
 * a header) within INTRO_LIST_MAX bytes.  Its signature is the
 * reader's to check, under a key of its own trust store.
 */
static int
parse_intro(const struct kv_line *kv, struct msg_meta *meta,
    struct smimp_err *err)
{
	struct introduction *in;
	size_t i, total = kv->value_len;

	for (i = 0; i < meta->nintros; i++)
		total += introduction_encoded_len(&meta->intros[i]) + 1;
	if (total > INTRO_LIST_MAX)
		return -1;
	in = realloc(meta->intros, (meta->nintros + 1) * sizeof(*in));
	if (in == NULL)
		return -1;
	meta->intros = in;
	if (introduction_decode(&in[meta->nintros], kv->value, kv->value_len,
	    err) != 0)
		return -1;
	meta->nintros++;
	return 0;
}

/*
 * One part line: at most PART_MAX, well formed (part.h), no two
 * attachments of one name; its bytes follow those of the part before.
 */
static int
parse_part(const struct kv_line *kv, struct msg_meta *meta,
    struct smimp_err *err)
{
	struct msg_part *p;
	const char *why;
	size_t i;
	int r;

	if (meta->nparts == PART_MAX)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "malformed "
		    "envelope: more than %d parts", PART_MAX);
	p = realloc(meta->parts, (meta->nparts + 1) * sizeof(*p));
	if (p == NULL)
		return smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
	meta->parts = p;
	p += meta->nparts;
	r = part_line_parse(kv->value, kv->value_len, p, &why);
	if (r != 0)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG, "malformed "
		    "envelope: part %zu %s%s", meta->nparts + 1,
		    r == -2 ? "has a name that " : "", why);
	for (i = 0; i < meta->nparts; i++)
		if (p->known && meta->parts[i].known &&
		    strcmp(meta->parts[i].name, p->name) == 0)
			return smimp_err_set(err, SMIMP_EXIT_BADMSG, "malformed "
			    "envelope: part %zu has the name of part %zu",
			    meta->nparts + 1, i + 1);
	p->offset = meta->parts_len;
	meta->parts_len += p->size;
	meta->nparts++;
	return 0;
}

/* Fields of H in their fixed order; to/cc repeat, some are optional. */
static int
parse_fields(const char *h, size_t len, struct msg_meta *meta,
    unsigned char fp[FINGERPRINT_SIZE], unsigned char head[32],
    struct kv_line *pad_kv, struct kv_line *log_kv, struct smimp_err *err)
{
	struct kv_line kv;
	size_t pos = strlen(ENV_MAGIC), fs_next;
	char tmp[64];
	int r;

	/* Every line first, so that the errors below name a field. */
	while ((r = kv_next(h, len, &pos, ENV_MAX_LINE, &kv)) == 1)
		;
	if (r < 0)
		return malformed(err, "a line that is not \"name: value\" "
		    "text (a control character, or no \": \")");
	pos = strlen(ENV_MAGIC);
#define NEXT() (kv_next(h, len, &pos, ENV_MAX_LINE, &kv) == 1)
	if (!NEXT() || !kv_is(&kv, "type") ||
	    copy_value(&kv, meta->type, sizeof(meta->type)) != 0 ||
	    !type_ok(meta->type))
		return malformed(err, "bad type");
	if (!NEXT() || !kv_is(&kv, "from") ||
	    copy_value(&kv, meta->from, sizeof(meta->from)) != 0)
		return malformed(err, "bad from");
	if (!NEXT() || !kv_is(&kv, "from-fingerprint") ||
	    kv_value_copy(&kv, tmp, sizeof(tmp)) != 0 ||
	    fingerprint_exact(tmp, fp) != 0)
		return malformed(err, "bad from-fingerprint");
	if (!NEXT() || !kv_is(&kv, "from-log-head") ||
	    b64_decode_exact(kv.value, kv.value_len, head, 32) != 0)
		return malformed(err, "bad from-log-head");
	r = NEXT();
	if (r && kv_is(&kv, "from-device")) {
		if (kv_value_copy(&kv, meta->from_device,
		    sizeof(meta->from_device)) != 0 ||
		    !iddev_name_valid(meta->from_device))
			return malformed(err, "bad from-device");
		r = NEXT();
	}
	for (; r && (kv_is(&kv, "to") || kv_is(&kv, "cc")); r = NEXT()) {
		int cc = kv_is(&kv, "cc");

		if (meta->nrcpts == MSG_MAX_RECIPIENTS)
			return smimp_err_set(err, SMIMP_EXIT_BADMSG,
			    "malformed envelope: more than %d recipients",
			    MSG_MAX_RECIPIENTS);
		if ((!cc && meta->nrcpts > 0 && meta->rcpts[meta->nrcpts - 1].cc)
		    || parse_recipient(&kv, meta, cc) != 0)
			return malformed(err, "bad recipient");
	}
	if (meta->nrcpts == 0 || meta->rcpts[0].cc)
		return malformed(err, "no recipient");
	for (fs_next = 0; r && kv_is(&kv, "forward-secret"); r = NEXT())
		if (parse_forward_secret(&kv, meta, &fs_next) != 0)
			return malformed(err, "bad forward-secret");
	if (!r || !kv_is(&kv, "date") ||
	    time_parse(kv.value, kv.value_len, &meta->date) != 0)
		return malformed(err, "bad date");
	if (!NEXT() || !kv_is(&kv, "message-id") ||
	    copy_id(&kv, meta->message_id, sizeof(meta->message_id)) != 0)
		return malformed(err, "bad message-id");
	if (!NEXT() || !kv_is(&kv, "thread-id") ||
	    copy_id(&kv, meta->thread_id, sizeof(meta->thread_id)) != 0)
		return malformed(err, "bad thread-id");
	if (!NEXT())
		return malformed(err, "truncated header");
	if (kv_is(&kv, "in-reply-to")) {
		if (copy_id(&kv, meta->in_reply_to,
		    sizeof(meta->in_reply_to)) != 0 || !NEXT())
			return malformed(err, "bad in-reply-to");
	}
	if (kv_is(&kv, "subject")) {
		if (copy_value(&kv, meta->subject, sizeof(meta->subject)) != 0
		    || !NEXT())
			return malformed(err, "bad subject");
	}
	if (!kv_is(&kv, "content-type") ||
	    !content_type_ok(kv.value, kv.value_len) ||
	    kv_value_copy(&kv, meta->content_type,
	    sizeof(meta->content_type)) != 0)
		return malformed(err, "bad content-type");
	r = NEXT();
	for (; r && kv_is(&kv, "part"); r = NEXT())
		if (parse_part(&kv, meta, err) != 0)
			return -1;
	*pad_kv = kv;
	if (r && kv_is(&kv, "padding")) {
		/* The one scheme this version knows (doc/PROTOCOL.md 9). */
		if (kv.value_len != strlen(PAD_SCHEME) ||
		    memcmp(kv.value, PAD_SCHEME, kv.value_len) != 0)
			return malformed(err, "bad padding");
		meta->padded = 1;
		r = NEXT();
	}
	if (!r || !kv_is(&kv, "sender-log"))
		return malformed(err, "missing sender-log");
	*log_kv = kv;
	while (NEXT())
		if (!kv_is(&kv, "introduction") ||
		    parse_intro(&kv, meta, err) != 0)
			return malformed(err, kv_is(&kv, "introduction") ?
			    "bad introduction" :
			    "unexpected field after sender-log");
#undef NEXT
	return 0;
}

/*
 * The header as shown to a user: every field but the long sender-log.
 * A device's message shows its sender as people read it, "from:
 * alice@example.org, device ci-runner", in place of the from and
 * from-device lines.
 */
static int
header_text(struct msg_meta *meta, const char *h, size_t log_start)
{
	size_t start = strlen(ENV_MAGIC), len = log_start - start, n = 0;
	const char *p = h + start, *end = h + log_start, *nl;
	char *out;

	out = malloc(len + sizeof(", device ") + IDDEV_NAME_MAX + 1);
	if (out == NULL)
		return -1;
	for (; p < end; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(end - p));
		if (nl == NULL)
			break;	/* H is parsed: every line ends */
		if (meta->from_device[0] != '\0' &&
		    strncmp(p, "from-device: ", 13) == 0)
			continue;
		memcpy(out + n, p, (size_t)(nl - p));
		n += (size_t)(nl - p);
		if (meta->from_device[0] != '\0' &&
		    strncmp(p, "from: ", 6) == 0)
			n += (size_t)snprintf(out + n, sizeof(", device ") +
			    IDDEV_NAME_MAX, ", device %s", meta->from_device);
		out[n++] = '\n';
	}
	out[n] = '\0';
	meta->header_text = out;
	meta->header_len = n;
	return 0;
}

/*
 * The log pinned for address, verified when it was pinned, or NULL: a
 * sender's log that is it, or extends it, has only its later records
 * verified.
 */
static const struct idlog *
pinned_log(const struct trust_store *ts, const char *address)
{
	const struct trust_entry *e = ts != NULL ? trust_find(ts, address) :
	    NULL;

	return e != NULL && e->has_log ? &e->log : NULL;
}

int
env_header_parse(const unsigned char *buf, size_t len, size_t *hlen,
    struct msg_meta *meta, const struct trust_store *ts,
    struct smimp_err *err)
{
	const char *h = (const char *)buf;
	unsigned char fp[FINGERPRINT_SIZE], head[32];
	unsigned char *logbuf = NULL;
	struct kv_line log_kv = { NULL, 0, NULL, 0, 0 }, pad_kv = log_kv;
	const char *end;
	size_t loglen, scan = len < MSG_MAX_HEADER ? len : MSG_MAX_HEADER;
	int ret = -1;

	memset(meta, 0, sizeof(*meta));
	if (len < strlen(ENV_MAGIC) ||
	    memcmp(h, ENV_MAGIC, strlen(ENV_MAGIC)) != 0)
		return smimp_err_set(err, SMIMP_EXIT_BADMSG,
		    "not a smimp message: the payload is not a smimp "
		    "envelope");
	end = NULL;
	for (size_t i = 1; i < scan; i++) {
		if (h[i] == '\n' && h[i - 1] == '\n') {
			end = h + i - 1;
			break;
		}
	}
	if (end == NULL)
		return malformed(err, len < MSG_MAX_HEADER ?
		    "unterminated header" : "header too large");
	*hlen = (size_t)(end - h) + 2;
	if (parse_fields(h, *hlen - 1, meta, fp, head, &pad_kv, &log_kv,
	    err) != 0)
		goto out;
	logbuf = malloc(log_kv.value_len);
	if (logbuf == NULL) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
		goto out;
	}
	if (b64_decode_public(log_kv.value, log_kv.value_len, logbuf,
	    log_kv.value_len, &loglen) != 0) {
		malformed(err, "bad sender-log");
		goto out;
	}
	if (idlog_parse_after(&meta->sender, logbuf, loglen,
	    pinned_log(ts, meta->from), err) != 0)
		goto out;
	if (strcmp(meta->sender.address, meta->from) != 0 ||
	    sodium_memcmp(meta->sender.fingerprint, fp, FINGERPRINT_SIZE) != 0
	    || sodium_memcmp(meta->sender.head, head, 32) != 0) {
		malformed(err, "the sender log does not match from");
		goto out;
	}
	/* What a user is shown ends before the padding line, if any. */
	if (header_text(meta, h, meta->padded ? pad_kv.start :
	    log_kv.start) != 0) {
		smimp_err_sys(err, SMIMP_EXIT_FAIL, "out of memory");
		goto out;
	}
	ret = 0;
out:
	free(logbuf);
	if (ret != 0)
		msg_meta_release(meta);
	return ret;
}
