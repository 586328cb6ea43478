#include "trace/codec.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

/* The tag byte that starts every event. */
#define TAG_FORM_MASK 0x3
#define TAG_ENTRY_PREDICTED 0x0 /* an entry of the function predicted to come next */
#define TAG_ENTRY 0x1       /* an entry of the function named next */
#define TAG_EXIT_TOP 0x2    /* the exit of the top frame: no func_id, no sp */
#define TAG_EXIT 0x3        /* any other exit */
#define TAG_FLAGS_SHIFT 2   /* TRACE_EVENT_* flags, bits 2..5 */
#define TAG_FLAGS_MASK 0xf
#define TAG_ESCAPE 0x40     /* an escape byte follows */
#define TAG_AS_PREDICTED 0x80 /* the deltas are all 0 and omitted */

/* The escape byte, for what is rare. */
#define ESCAPE_CPU 0x1      /* a cpu varint follows the ts */
#define ESCAPE_TS_BACK 0x2  /* the ts went backwards: the varint is subtracted */
#define ESCAPE_RAW 0x4      /* an event the function table cannot explain: every field */
#define ESCAPE_KNOWN (ESCAPE_CPU | ESCAPE_TS_BACK | ESCAPE_RAW)

#define DECODE_ERROR (-EBADMSG)

static enum codec_exit_value exit_value_of(const struct trace_function *fn, struct codec_function *out)
{
	const struct poll_result_layout *r = &fn->result;
	unsigned size = r->disc_size, offset = r->disc_offset;

	if (fn->role != ROLE_POLL || size == 0 || size > 8)
		return CODEC_EXIT_ARG0;
	out->disc_mask = size == 8 ? UINT64_MAX : (1ULL << (size * 8)) - 1;
	/* poll_result__decode reads exactly these bytes: keep them, drop the
	 * payload. A layout it cannot read keeps arg0 whole. */
	if (r->mode == RESULT_IN_REGS && offset < 16 && offset % 8 + size <= 8) {
		out->disc_shift = (uint8_t)(offset % 8 * 8);
		return offset < 8 ? CODEC_EXIT_DISC_ARG0 : CODEC_EXIT_DISC_ARG1;
	}
	if (r->mode == RESULT_IN_MEMORY)
		return CODEC_EXIT_DISC_MEMORY;
	out->disc_mask = 0;
	return CODEC_EXIT_ARG0;
}

int event_codec__init(struct event_codec *codec, const struct trace_function *fns, size_t count)
{
	codec->function_count = 0;
	codec->functions = calloc(count ? count : 1, sizeof(*codec->functions));
	if (!codec->functions)
		return -ENOMEM;
	codec->function_count = count;
	for (size_t i = 0; i < count; i++) {
		struct codec_function *f = &codec->functions[i];

		f->opens_frame = fns[i].role == ROLE_POLL;
		f->entry_arg = fns[i].role == ROLE_POLL && fns[i].self_arg == 1;
		f->exit_value = (uint8_t)exit_value_of(&fns[i], f);
	}
	return 0;
}

void event_codec__free(struct event_codec *codec)
{
	free(codec->functions);
	codec->functions = NULL;
	codec->function_count = 0;
}

void codec_state__reset(struct codec_state *s, uint64_t first_ts)
{
	s->ts = first_ts;
	s->sp = 0;
	s->value = 0;
	s->return_address = 0;
	s->prev_func = CODEC_NO_FUNCTION;
	s->prev_exit = 0;
	s->depth = 0;
	s->cpu = 0;
	for (size_t i = 0; i < CODEC_CACHE_SLOTS; i++)
		s->slots[i].func_id = CODEC_NO_FUNCTION;
}

static uint64_t zigzag(uint64_t delta)
{
	return (delta << 1) ^ (uint64_t)((int64_t)delta >> 63);
}

static uint64_t unzigzag(uint64_t v)
{
	return (v >> 1) ^ (0 - (v & 1));
}

static uint8_t *put_varint(uint8_t *out, uint64_t v)
{
	while (v >= 0x80) {
		*out++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*out++ = (uint8_t)v;
	return out;
}

/* A LEB128 value of at most 10 bytes whose bits fit in 64. */
static int get_long_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
	const uint8_t *q = *p;
	uint64_t v = 0;

	for (unsigned shift = 0; q < end; shift += 7) {
		uint8_t byte = *q++;

		if (shift == 63 && byte > 1)
			return DECODE_ERROR;
		v |= (uint64_t)(byte & 0x7f) << shift;
		if (!(byte & 0x80)) {
			*p = q;
			*out = v;
			return 0;
		}
	}
	return DECODE_ERROR;
}

/* Most values are deltas of 0 or small: one byte. */
static inline int get_varint(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
	if (*p < end && !(**p & 0x80)) {
		*out = *(*p)++;
		return 0;
	}
	return get_long_varint(p, end, out);
}

static bool is_known(const struct event_codec *codec, const struct trace_event *e)
{
	return e->func_id < codec->function_count &&
	       (e->kind == TRACE_EVENT_ENTRY || e->kind == TRACE_EVENT_EXIT) && e->flags <= TAG_FLAGS_MASK;
}

/* The model both sides keep. Encoder and decoder call exactly these, in
 * the same order, with values the decoder has read by then. */

/* Frames a new event's stack pointer shows are gone (the stack grows
 * down), as the poll builder's close_unwound sees them: an entry
 * replaces frames at its own stack pointer, an exit does not. */
static void pop_unwound(struct codec_state *s, uint64_t sp, bool inclusive)
{
	while (s->depth) {
		uint64_t top = s->frames[s->depth - 1].sp;

		if (top > sp || (!inclusive && top == sp))
			break;
		s->depth--;
	}
}

static bool top_is(const struct codec_state *s, uint64_t sp, uint32_t func_id)
{
	return s->depth && s->frames[s->depth - 1].sp == sp && s->frames[s->depth - 1].func_id == func_id;
}

/* A future usually lives inside its parent's: entries are told against
 * the enclosing frame's argument. */
static uint64_t entry_reference(const struct codec_state *s)
{
	return s->depth ? s->frames[s->depth - 1].value : s->value;
}

static void push_frame(struct codec_state *s, uint64_t sp, uint64_t value, uint32_t func_id)
{
	if (s->depth == CODEC_MAX_DEPTH)
		return; /* deeper frames are not followed: their exits are explicit */
	s->frames[s->depth++] = (struct codec_frame){ .sp = sp, .value = value, .func_id = func_id };
}

/* The function's slot, taken over (with neutral predictions) when it
 * holds another function or none. */
static struct codec_slot *claim_slot(struct codec_state *s, uint32_t func_id)
{
	struct codec_slot *c = &s->slots[func_id % CODEC_CACHE_SLOTS];

	if (c->func_id != func_id)
		*c = (struct codec_slot){ .sp = s->sp, .return_address = s->return_address,
					  .func_id = func_id, .next = { CODEC_NO_FUNCTION, CODEC_NO_FUNCTION } };
	return c;
}

/* Polls repeat: what followed the previous event's function last time
 * is likely to follow it again. */
static uint32_t predicted_next(const struct codec_state *s)
{
	const struct codec_slot *c;

	if (s->prev_func == CODEC_NO_FUNCTION)
		return CODEC_NO_FUNCTION;
	c = &s->slots[s->prev_func % CODEC_CACHE_SLOTS];
	return c->func_id == s->prev_func ? c->next[s->prev_exit] : CODEC_NO_FUNCTION;
}

static void note_successor(struct codec_state *s, uint32_t func_id)
{
	struct codec_slot *c;

	if (s->prev_func == CODEC_NO_FUNCTION)
		return;
	c = &s->slots[s->prev_func % CODEC_CACHE_SLOTS];
	if (c->func_id == s->prev_func)
		c->next[s->prev_exit] = func_id;
}

static void commit_entry(struct codec_state *s, struct codec_slot *c, const struct codec_function *f,
			 const struct trace_event *e, uint64_t value, uint64_t reference)
{
	c->sp = e->sp;
	c->offset = value - reference;
	if (e->flags & TRACE_EVENT_RETURN_ADDRESS)
		c->return_address = s->return_address = e->aux;
	s->sp = e->sp;
	s->value = value;
	s->prev_func = e->func_id;
	s->prev_exit = 0;
	if (f->opens_frame)
		push_frame(s, e->sp, value, e->func_id);
}

/* Which value an exit's is told against: a function whose exits echoed
 * their frame's argument (a task pointer left in rax) is predicted to
 * echo it again; others to repeat their last value (Pending, Pending). */
static uint64_t exit_prediction(const struct codec_slot *c, uint64_t frame_value)
{
	return c->exit_echo ? frame_value : c->exit_value;
}

static void commit_exit(struct codec_state *s, struct codec_slot *c, const struct trace_event *e,
			uint64_t value, uint64_t frame_value)
{
	c->sp = e->sp;
	c->exit_value = value;
	c->exit_echo = value == frame_value;
	if (e->flags & TRACE_EVENT_STATE)
		c->state = e->aux;
	s->sp = e->sp;
	s->prev_func = e->func_id;
	s->prev_exit = 1;
}

/* The frame an explicit exit closes: unwound frames go first; the
 * argument its value is told against is the frame's, when it is there,
 * else the enclosing one's. */
static uint64_t close_explicit(struct codec_state *s, uint64_t sp, uint32_t func_id)
{
	pop_unwound(s, sp, false);
	if (top_is(s, sp, func_id))
		return s->frames[--s->depth].value;
	return entry_reference(s);
}

static uint64_t exit_value(const struct codec_function *f, const struct trace_event *e)
{
	switch (f->exit_value) {
	case CODEC_EXIT_DISC_ARG0: return (e->arg0 >> f->disc_shift) & f->disc_mask;
	case CODEC_EXIT_DISC_ARG1: return (e->arg1 >> f->disc_shift) & f->disc_mask;
	case CODEC_EXIT_DISC_MEMORY: return e->arg1 & f->disc_mask;
	default: return e->arg0;
	}
}

static void set_exit_value(const struct codec_function *f, uint64_t v, struct trace_event *e)
{
	switch (f->exit_value) {
	case CODEC_EXIT_DISC_ARG0: e->arg0 = v << f->disc_shift; break;
	case CODEC_EXIT_DISC_ARG1: e->arg1 = v << f->disc_shift; break;
	case CODEC_EXIT_DISC_MEMORY: e->arg1 = v; break;
	default: e->arg0 = v; break;
	}
}

/* Encoding. */

static uint8_t *put_head(struct codec_state *s, const struct trace_event *e, unsigned tag,
			 unsigned escape, uint8_t *out)
{
	if (e->ts < s->ts)
		escape |= ESCAPE_TS_BACK;
	if (e->cpu != s->cpu)
		escape |= ESCAPE_CPU;
	*out++ = (uint8_t)(tag | (escape ? TAG_ESCAPE : 0));
	if (escape)
		*out++ = (uint8_t)escape;
	out = put_varint(out, escape & ESCAPE_TS_BACK ? s->ts - e->ts : e->ts - s->ts);
	if (escape & ESCAPE_CPU)
		out = put_varint(out, e->cpu);
	s->ts = e->ts;
	s->cpu = e->cpu;
	return out;
}

static uint8_t *put_raw(struct codec_state *s, const struct trace_event *e, uint8_t *out)
{
	out = put_head(s, e, 0, ESCAPE_RAW, out);
	*out++ = e->kind;
	*out++ = e->flags;
	out = put_varint(out, e->func_id);
	out = put_varint(out, zigzag(e->sp - s->sp));
	out = put_varint(out, e->arg0);
	out = put_varint(out, e->arg1);
	out = put_varint(out, e->aux);
	s->sp = e->sp;
	return out;
}

static uint8_t *put_entry(const struct codec_function *f, struct codec_state *s,
			  const struct trace_event *e, uint8_t *out)
{
	uint64_t value = f->entry_arg ? e->arg1 : e->arg0, deltas[3] = { 0 }, reference;
	bool predicted = predicted_next(s) == e->func_id, has_ra = e->flags & TRACE_EVENT_RETURN_ADDRESS;
	struct codec_slot *c;
	unsigned tag = (predicted ? TAG_ENTRY_PREDICTED : TAG_ENTRY) | (unsigned)e->flags << TAG_FLAGS_SHIFT;

	note_successor(s, e->func_id);
	c = claim_slot(s, e->func_id);
	deltas[0] = zigzag(e->sp - c->sp);
	pop_unwound(s, e->sp, true);
	reference = entry_reference(s);
	deltas[1] = zigzag(value - reference - c->offset);
	if (has_ra)
		deltas[2] = zigzag(e->aux - c->return_address);
	if (!(deltas[0] | deltas[1] | deltas[2]))
		tag |= TAG_AS_PREDICTED;
	out = put_head(s, e, tag, 0, out);
	if (!predicted)
		out = put_varint(out, e->func_id);
	if (!(tag & TAG_AS_PREDICTED)) {
		out = put_varint(out, deltas[0]);
		out = put_varint(out, deltas[1]);
		if (has_ra)
			out = put_varint(out, deltas[2]);
	}
	commit_entry(s, c, f, e, value, reference);
	return out;
}

static uint8_t *put_exit(const struct codec_function *f, struct codec_state *s,
			 const struct trace_event *e, uint8_t *out)
{
	bool top = top_is(s, e->sp, e->func_id), has_state = e->flags & TRACE_EVENT_STATE;
	struct codec_slot *c = claim_slot(s, e->func_id);
	uint64_t value = exit_value(f, e), sp_delta = zigzag(e->sp - c->sp), frame_value, deltas[2] = { 0 };
	unsigned tag = (top ? TAG_EXIT_TOP : TAG_EXIT) | (unsigned)e->flags << TAG_FLAGS_SHIFT;

	frame_value = top ? s->frames[--s->depth].value : close_explicit(s, e->sp, e->func_id);
	deltas[0] = zigzag(value - exit_prediction(c, frame_value));
	if (has_state)
		deltas[1] = zigzag(e->aux - c->state);
	if (!(deltas[0] | deltas[1]))
		tag |= TAG_AS_PREDICTED;
	out = put_head(s, e, tag, 0, out);
	if (!top) {
		out = put_varint(out, e->func_id);
		out = put_varint(out, sp_delta);
	}
	if (!(tag & TAG_AS_PREDICTED)) {
		out = put_varint(out, deltas[0]);
		if (has_state)
			out = put_varint(out, deltas[1]);
	}
	commit_exit(s, c, e, value, frame_value);
	return out;
}

size_t event_codec__encode(const struct event_codec *codec, struct codec_state *s,
			   const struct trace_event *e, uint8_t *out)
{
	uint8_t *end;

	if (!is_known(codec, e))
		end = put_raw(s, e, out);
	else if (e->kind == TRACE_EVENT_ENTRY)
		end = put_entry(&codec->functions[e->func_id], s, e, out);
	else
		end = put_exit(&codec->functions[e->func_id], s, e, out);
	return (size_t)(end - out);
}

/* Decoding: the same steps, reading what the encoder wrote. */

static int get_head(struct codec_state *s, const uint8_t **p, const uint8_t *end, struct trace_event *e,
		    unsigned *tag, unsigned *escape)
{
	uint64_t delta, cpu;

	if (end - *p < 2)
		return DECODE_ERROR;
	*tag = *(*p)++;
	*escape = *tag & TAG_ESCAPE ? *(*p)++ : 0;
	if ((*escape & ~ESCAPE_KNOWN) || (*tag & TAG_ESCAPE && !*escape) || get_varint(p, end, &delta))
		return DECODE_ERROR;
	s->ts = *escape & ESCAPE_TS_BACK ? s->ts - delta : s->ts + delta;
	if (*escape & ESCAPE_CPU) {
		if (get_varint(p, end, &cpu) || cpu > UINT16_MAX)
			return DECODE_ERROR;
		s->cpu = (uint16_t)cpu;
	}
	e->ts = s->ts;
	e->cpu = s->cpu;
	e->flags = (uint8_t)((*tag >> TAG_FLAGS_SHIFT) & TAG_FLAGS_MASK);
	return 0;
}

static int get_func_id(const struct event_codec *codec, const uint8_t **p, const uint8_t *end,
		       struct trace_event *e)
{
	uint64_t id;

	if (get_varint(p, end, &id) || id >= codec->function_count)
		return DECODE_ERROR;
	e->func_id = (uint32_t)id;
	return 0;
}

/* deltas[i] stay 0 when the tag says they were as predicted. */
static int get_deltas(const uint8_t **p, const uint8_t *end, unsigned tag, uint64_t *deltas, size_t count)
{
	if (tag & TAG_AS_PREDICTED)
		return 0;
	for (size_t i = 0; i < count; i++)
		if (get_varint(p, end, &deltas[i]))
			return DECODE_ERROR;
	return 0;
}

static int get_raw(struct codec_state *s, const uint8_t **p, const uint8_t *end, unsigned tag,
		   struct trace_event *e)
{
	uint64_t id, sp_delta;

	if ((tag & ~TAG_ESCAPE) || end - *p < 2)
		return DECODE_ERROR;
	e->kind = *(*p)++;
	e->flags = *(*p)++;
	if (get_varint(p, end, &id) || id > UINT32_MAX || get_varint(p, end, &sp_delta) ||
	    get_varint(p, end, &e->arg0) || get_varint(p, end, &e->arg1) || get_varint(p, end, &e->aux))
		return DECODE_ERROR;
	e->func_id = (uint32_t)id;
	e->sp = s->sp += unzigzag(sp_delta);
	return 0;
}

static int get_entry(const struct event_codec *codec, struct codec_state *s, const uint8_t **p,
		     const uint8_t *end, unsigned tag, struct trace_event *e)
{
	const struct codec_function *f;
	struct codec_slot *c;
	uint64_t deltas[3] = { 0 }, value, reference;
	bool has_ra = e->flags & TRACE_EVENT_RETURN_ADDRESS;

	e->func_id = predicted_next(s);
	if ((tag & TAG_FORM_MASK) == TAG_ENTRY_PREDICTED ? e->func_id == CODEC_NO_FUNCTION
							 : get_func_id(codec, p, end, e))
		return DECODE_ERROR;
	if (get_deltas(p, end, tag, deltas, has_ra ? 3 : 2))
		return DECODE_ERROR;
	f = &codec->functions[e->func_id];
	note_successor(s, e->func_id);
	c = claim_slot(s, e->func_id);
	e->kind = TRACE_EVENT_ENTRY;
	e->sp = c->sp + unzigzag(deltas[0]);
	pop_unwound(s, e->sp, true);
	reference = entry_reference(s);
	value = reference + c->offset + unzigzag(deltas[1]);
	if (f->entry_arg)
		e->arg1 = value;
	else
		e->arg0 = value;
	if (has_ra)
		e->aux = c->return_address + unzigzag(deltas[2]);
	commit_entry(s, c, f, e, value, reference);
	return 0;
}

static int get_exit(const struct event_codec *codec, struct codec_state *s, const uint8_t **p,
		    const uint8_t *end, unsigned tag, struct trace_event *e)
{
	bool top = (tag & TAG_FORM_MASK) == TAG_EXIT_TOP, has_state = e->flags & TRACE_EVENT_STATE;
	uint64_t sp_delta = 0, deltas[2] = { 0 }, frame_value, value;
	const struct codec_function *f;
	struct codec_slot *c;

	if (top && !s->depth)
		return DECODE_ERROR;
	if (top) {
		e->sp = s->frames[s->depth - 1].sp;
		e->func_id = s->frames[s->depth - 1].func_id;
	} else if (get_func_id(codec, p, end, e) || get_varint(p, end, &sp_delta)) {
		return DECODE_ERROR;
	}
	if (get_deltas(p, end, tag, deltas, has_state ? 2 : 1))
		return DECODE_ERROR;
	f = &codec->functions[e->func_id];
	c = claim_slot(s, e->func_id);
	if (!top)
		e->sp = c->sp + unzigzag(sp_delta);
	frame_value = top ? s->frames[--s->depth].value : close_explicit(s, e->sp, e->func_id);
	value = exit_prediction(c, frame_value) + unzigzag(deltas[0]);
	if (f->exit_value != CODEC_EXIT_ARG0 && (value & ~f->disc_mask))
		return DECODE_ERROR;
	e->kind = TRACE_EVENT_EXIT;
	set_exit_value(f, value, e);
	if (has_state)
		e->aux = c->state + unzigzag(deltas[1]);
	commit_exit(s, c, e, value, frame_value);
	return 0;
}

int event_codec__decode(const struct event_codec *codec, struct codec_state *s, const uint8_t **p,
			const uint8_t *end, struct trace_event *e)
{
	unsigned tag, escape;
	int err;

	/* Straight into e (a copy through a local was a tenth of decoding):
	 * every field but pid and tid is written below, these three maybe not. */
	e->arg0 = e->arg1 = e->aux = 0;
	err = get_head(s, p, end, e, &tag, &escape);
	if (err)
		return err;
	if (escape & ESCAPE_RAW)
		return get_raw(s, p, end, tag, e);
	if ((tag & TAG_FORM_MASK) <= TAG_ENTRY)
		return get_entry(codec, s, p, end, tag, e);
	return get_exit(codec, s, p, end, tag, e);
}

struct trace_event event_codec__kept(const struct event_codec *codec, const struct trace_event *e)
{
	struct trace_event kept = *e;
	const struct codec_function *f;

	if (!is_known(codec, e))
		return kept;
	f = &codec->functions[e->func_id];
	kept.arg0 = kept.arg1 = kept.aux = 0;
	if (e->kind == TRACE_EVENT_ENTRY) {
		if (f->entry_arg)
			kept.arg1 = e->arg1;
		else
			kept.arg0 = e->arg0;
		if (e->flags & TRACE_EVENT_RETURN_ADDRESS)
			kept.aux = e->aux;
	} else {
		set_exit_value(f, exit_value(f, e), &kept);
		if (e->flags & TRACE_EVENT_STATE)
			kept.aux = e->aux;
	}
	return kept;
}
