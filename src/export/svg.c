/* A flame graph of the on-CPU samples as one self-contained SVG file (no
 * script or style from elsewhere): the profile model's stacks (task at the
 * bottom, its futures, the native frames above), each frame as wide as its
 * samples. Click a frame to zoom to it (click the bottom bar to come
 * back), press / or Ctrl-F (or the Search link) to highlight the frames
 * matching a regular expression and see their share. Colors are stable:
 * a frame's hue comes from its name (FNV-1a), the same in every run and
 * every trace; tasks are green, futures blue, native frames warm. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "export/export.h"
#include "export/filter.h"
#include "export/profile_common.h"
#include "trace/poll_stacks.h"
#include "trace/profile.h"
#include "util/array.h"
#include "util/hash.h"
#include "util/u64map.h"

#define WIDTH 1200.0
#define FRAME_HEIGHT 17
#define TOP 44
#define BOTTOM 24
#define MIN_WIDTH_PX 0.3 /* narrower frames are left out: they cannot be seen or clicked */

struct flame_node {
	const char *name;       /* owned by the tree's names */
	uint8_t kind;           /* enum profile_frame_kind */
	uint32_t parent;        /* index + 1, 0 for the root's children */
	uint32_t first_child;   /* index + 1 */
	uint32_t next_sibling;  /* index + 1 */
	uint32_t depth;
	uint64_t samples;
};

struct flame_tree {
	struct flame_node *nodes;  /* [0] is the root: all samples */
	size_t count, cap;
	struct u64map child_index; /* hash(parent, name) -> index + 1 */
	char **names;
	size_t name_count, name_cap;
	uint32_t at;               /* the node the sample being added is at */
	uint64_t weight;           /* of the stack being added: 1 sample, or ns */
	bool pending;              /* poll time: a stack being added, its weight to come */
	const char *unit;          /* what the widths count: "samples", "ns" */
	uint32_t max_depth;
	int err;
};

static const char *keep_name(struct flame_tree *t, const char *name)
{
	char *copy;

	if (ARRAY_RESERVE(t->names, t->name_cap, t->name_count + 1) || !(copy = strdup(name))) {
		t->err = -ENOMEM;
		return NULL;
	}
	return t->names[t->name_count++] = copy;
}

/* The child of t->at named `name`: found through the index, or added. */
static uint32_t child(struct flame_tree *t, const char *name, enum profile_frame_kind kind)
{
	uint64_t key = (hash_string(name) ^ ((uint64_t)t->at * 0x9e3779b97f4a7c15ULL)) | 1;
	uintptr_t i = (uintptr_t)u64map_get(&t->child_index, key);
	struct flame_node *n;

	if (i && !strcmp(t->nodes[i - 1].name, name) && t->nodes[i - 1].parent == t->at + 1)
		return (uint32_t)(i - 1);
	for (uint32_t c = t->nodes[t->at].first_child; c; c = t->nodes[c - 1].next_sibling)
		if (!strcmp(t->nodes[c - 1].name, name))
			return c - 1; /* a hash shared with another frame: found the slow way */
	if (ARRAY_RESERVE(t->nodes, t->cap, t->count + 1) || !(name = keep_name(t, name))) {
		t->err = -ENOMEM;
		return t->at;
	}
	n = &t->nodes[t->count];
	*n = (struct flame_node){ .name = name, .kind = (uint8_t)kind, .parent = t->at + 1,
				  .next_sibling = t->nodes[t->at].first_child, .depth = t->nodes[t->at].depth + 1 };
	t->nodes[t->at].first_child = (uint32_t)++t->count;
	if (!i && u64map_put(&t->child_index, key, (void *)(uintptr_t)t->count))
		t->err = -ENOMEM;
	if (n->depth > t->max_depth)
		t->max_depth = n->depth;
	return (uint32_t)(t->count - 1);
}

static void add_frame(const char *name, enum profile_frame_kind kind, const char *file, uint32_t line,
			 void *ctx)
{
	struct flame_tree *t = ctx;

	(void)file, (void)line;
	if (t->err)
		return;
	t->at = child(t, name, kind);
	t->nodes[t->at].samples += t->weight;
}

/* The root, "all": every sample, or every ns. */
static int start_tree(struct flame_tree *t)
{
	if (ARRAY_RESERVE(t->nodes, t->cap, 1))
		return -ENOMEM;
	t->nodes[0] = (struct flame_node){ .name = "all" };
	t->count = 1;
	return 0;
}

static int build_tree(struct flame_tree *t, const struct profile *p, const struct export_filter *filter,
		      int group_by)
{
	const struct trace_file *trace = p->trace;
	int err = start_tree(t);

	if (err)
		return err;
	for (size_t i = 0; i < trace->sample_count && !t->err; i++) {
		if (!export_profile__keeps(p, filter, i))
			continue;
		t->at = 0;
		t->weight = 1;
		t->nodes[0].samples++;
		profile__stack(p, i, (enum profile_group)group_by, add_frame, t);
	}
	return t->err;
}

/* The frame's fill: a hue band per kind, the place in it from the name. */
static void color(const struct flame_node *n, char *buf, size_t len)
{
	uint64_t h = hash_string(n->name);
	unsigned spread = (unsigned)(h % 1000), light = 50 + (unsigned)((h >> 20) % 15);

	switch (n->kind) {
	case PROFILE_FRAME_ROOT: snprintf(buf, len, "hsl(%u,55%%,%u%%)", 95 + spread % 50, light); break;
	case PROFILE_FRAME_FUTURE: snprintf(buf, len, "hsl(%u,60%%,%u%%)", 195 + spread % 45, light + 5); break;
	default: snprintf(buf, len, "hsl(%u,80%%,%u%%)", spread % 55, light + 5); break;
	}
}

static void put_escaped(FILE *out, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': fputs("&amp;", out); break;
		case '<': fputs("&lt;", out); break;
		case '>': fputs("&gt;", out); break;
		case '"': fputs("&quot;", out); break;
		default:
			if ((unsigned char)*s >= 0x20)
				fputc(*s, out);
		}
	}
}

/* Children left to right by name, as flamegraph.pl sorts them: the same
 * stacks always draw the same picture. */
static int cmp_names(const void *a, const void *b, void *ctx)
{
	const struct flame_node *nodes = ctx;

	return strcmp(nodes[*(const uint32_t *)a].name, nodes[*(const uint32_t *)b].name);
}

static void put_frame(FILE *out, const struct flame_tree *t, uint32_t i, double x, double scale, double height);

static void put_children(FILE *out, const struct flame_tree *t, uint32_t i, double x, double scale, double height)
{
	uint32_t kids[512], n = 0;

	for (uint32_t c = t->nodes[i].first_child; c && n < 512; c = t->nodes[c - 1].next_sibling)
		kids[n++] = c - 1;
	qsort_r(kids, n, sizeof(*kids), cmp_names, t->nodes);
	for (uint32_t k = 0; k < n; k++) {
		put_frame(out, t, kids[k], x, scale, height);
		x += (double)t->nodes[kids[k]].samples * scale;
	}
}

static void put_frame(FILE *out, const struct flame_tree *t, uint32_t i, double x, double scale, double height)
{
	const struct flame_node *n = &t->nodes[i];
	double w = (double)n->samples * scale, y = height - BOTTOM - (double)(n->depth + 1) * FRAME_HEIGHT;
	char fill[40];

	if (w < MIN_WIDTH_PX)
		return;
	color(n, fill, sizeof(fill));
	fprintf(out, "<g class=\"f\" data-s=\"%llu\"><title>", (unsigned long long)n->samples);
	put_escaped(out, n->name);
	fprintf(out, " (%llu %s, %.2f%%)</title><rect x=\"%.2f\" y=\"%.0f\" width=\"%.2f\" height=\"%d\" "
		     "fill=\"%s\" rx=\"2\"/><text x=\"%.2f\" y=\"%.0f\"></text></g>\n",
		(unsigned long long)n->samples, t->unit, 100.0 * (double)n->samples / (double)t->nodes[0].samples, x, y, w,
		FRAME_HEIGHT - 1, i ? fill : "hsl(0,0%,80%)", x + 3, y + FRAME_HEIGHT - 5);
	put_children(out, t, i, x, scale, height);
}

/* The page's behaviour: labels fitted to their frames, zoom, search. */
static const char script[] =
	"<script><![CDATA[\n"
	"'use strict';\n"
	"const svg = document.documentElement, W = svg.viewBox.baseVal.width, frames = [...document.querySelectorAll('g.f')];\n"
	"const info = document.getElementById('info');\n"
	"for (const g of frames) { const r = g.querySelector('rect'); g.x0 = +r.getAttribute('x'); g.w0 = +r.getAttribute('width');\n"
	"  g.y = +r.getAttribute('y'); g.name = g.querySelector('title').textContent.replace(/ \\([0-9]+ (samples|ns), [0-9.]+%\\)$/, ''); }\n"
	"function fit(g, x, w) { const r = g.querySelector('rect'), t = g.querySelector('text');\n"
	"  r.setAttribute('x', x); r.setAttribute('width', Math.max(w, 0)); t.setAttribute('x', x + 3);\n"
	"  const chars = Math.floor((w - 6) / 7); t.textContent = chars < 3 ? '' : g.name.length <= chars ? g.name : g.name.slice(0, chars - 2) + '..'; }\n"
	"function zoom(z) { const lo = z ? z.x0 : 0, hi = z ? z.x0 + z.w0 : W, k = W / (hi - lo);\n"
	"  for (const g of frames) { const inside = g.x0 + g.w0 > lo + 1e-6 && g.x0 < hi - 1e-6,\n"
	"    below = z && g.y > z.y && g.x0 <= lo + 1e-6 && g.x0 + g.w0 >= hi - 1e-6;\n"
	"    g.style.display = below || (inside && (!z || g.y <= z.y)) ? '' : 'none';\n"
	"    if (below) fit(g, 0, W); else if (inside) fit(g, (Math.max(g.x0, lo) - lo) * k, (Math.min(g.x0 + g.w0, hi) - Math.max(g.x0, lo)) * k); }\n"
	"  document.getElementById('unzoom').style.display = z ? '' : 'none'; }\n"
	"for (const g of frames) { g.addEventListener('click', () => zoom(g.y === frames[0].y ? null : g));\n"
	"  g.addEventListener('mouseover', () => info.textContent = g.querySelector('title').textContent);\n"
	"  g.addEventListener('mouseout', () => info.textContent = ' '); }\n"
	"function search(re) { let hit = 0; const total = +frames[0].dataset.s, seen = [];\n"
	"  for (const g of frames) { const m = re && re.test(g.name); g.querySelector('rect').classList.toggle('hit', !!m);\n"
	"    if (m && !seen.some(s => s.x0 <= g.x0 && g.x0 + g.w0 <= s.x0 + s.w0 && s.y > g.y)) { seen.push(g); hit += +g.dataset.s; } }\n"
	"  document.getElementById('matched').textContent = re ? 'Matched: ' + (100 * hit / total).toFixed(1) + '%' : ''; }\n"
	"function ask() { const s = prompt('Search (regular expression)', ''); if (s === null) return;\n"
	"  try { search(s ? new RegExp(s) : null); } catch (e) { alert(e.message); } }\n"
	"document.getElementById('search').addEventListener('click', ask);\n"
	"document.getElementById('unzoom').addEventListener('click', () => zoom(null));\n"
	"window.addEventListener('keydown', e => { if (e.key === '/' || (e.ctrlKey && e.key === 'f')) { e.preventDefault(); ask(); } });\n"
	"const q = new URLSearchParams(location.hash.slice(1)).get('search'); if (q) search(new RegExp(q));\n"
	"zoom(null);\n"
	"]]></script>\n";

static int write_svg(const struct flame_tree *t, const struct trace_file *trace, FILE *out, bool poll_time)
{
	double height = TOP + BOTTOM + (double)(t->max_depth + 1) * FRAME_HEIGHT;
	double scale = t->nodes[0].samples ? WIDTH / (double)t->nodes[0].samples : 0;
	const char *target = trace->meta.target_path ? strrchr(trace->meta.target_path, '/') : NULL;

	fprintf(out, "<?xml version=\"1.0\" standalone=\"no\"?>\n"
		     "<svg version=\"1.1\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
		     "viewBox=\"0 0 %.0f %.0f\" font-family=\"monospace\" font-size=\"12\">\n"
		     "<style>g.f:hover rect{stroke:#000;stroke-width:.5} g.f{cursor:pointer} rect.hit{fill:#e040e0} "
		     "text{pointer-events:none;fill:#000} .ui{cursor:pointer;fill:#1a5fb4}</style>\n"
		     "<rect width=\"100%%\" height=\"100%%\" fill=\"#f8f8f8\"/>\n<text x=\"%.0f\" y=\"22\" "
		     "text-anchor=\"middle\" font-size=\"16\">",
		WIDTH, height, WIDTH, height, WIDTH / 2);
	put_escaped(out, target ? target + 1 : trace->meta.target_path ? trace->meta.target_path : "profile");
	if (poll_time)
		fprintf(out, ": %.3f ms of poll time</text>\n", (double)t->nodes[0].samples / 1e6);
	else
		fprintf(out, ": %llu on-CPU samples at %u Hz</text>\n", (unsigned long long)t->nodes[0].samples,
			trace->sample_hz);
	fprintf(out, ""
		     "<text id=\"search\" class=\"ui\" x=\"%.0f\" y=\"22\" text-anchor=\"end\">Search</text>\n"
		     "<text id=\"unzoom\" class=\"ui\" x=\"10\" y=\"22\">Reset zoom</text>\n"
		     "<text id=\"matched\" x=\"%.0f\" y=\"%.0f\" text-anchor=\"end\"></text>\n"
		     "<text id=\"info\" x=\"10\" y=\"%.0f\"> </text>\n",
		WIDTH - 10, WIDTH - 10, height - 7, height - 7);
	put_frame(out, t, 0, 0, scale, height);
	fputs(script, out);
	fputs("</svg>\n", out);
	return ferror(out) ? -EIO : 0;
}

static void free_tree(struct flame_tree *t)
{
	for (size_t i = 0; i < t->name_count; i++)
		free(t->names[i]);
	free(t->names);
	free(t->nodes);
	u64map_free(&t->child_index);
}

static int svg_write_grouped(const struct trace_file *t, const struct export_filter *filter, FILE *out, int group_by)
{
	struct flame_tree tree = { .unit = "samples" };
	struct task_model model;
	struct profile p;
	int err = export_profile__begin(&p, &model, t, filter);

	if (err)
		return err;
	err = build_tree(&tree, &p, filter, group_by);
	if (!err)
		err = write_svg(&tree, t, out, false);
	free_tree(&tree);
	export_profile__end(&p, &model);
	return err;
}

static void add_poll_frame(const char *name, enum profile_frame_kind kind, const char *file, uint32_t line,
			 void *ctx)
{
	struct flame_tree *t = ctx;

	if (t->at == UINT32_MAX) { /* a new stack: from the root */
		t->at = 0;
		t->pending = true;
	}
	add_frame(name, kind, file, line, ctx);
}

/* A stack's frames were added with weight 0: its ns go on each of them. */
static void end_poll_stack(uint64_t ns, void *ctx)
{
	struct flame_tree *t = ctx;

	t->nodes[0].samples += ns;
	for (uint32_t i = t->at; i && t->pending; i = t->nodes[i].parent ? t->nodes[i].parent - 1 : 0)
		t->nodes[i].samples += ns;
	t->at = UINT32_MAX;
	t->pending = false;
}

/* --weight poll-time: each poll's own time on its stack, any trace. */
static int svg_write_poll_time(const struct trace_file *t, const struct export_filter *filter, FILE *out,
			       int group_by)
{
	struct flame_tree tree = { .unit = "ns", .at = UINT32_MAX };
	struct task_model model;
	struct poll_stacks stacks;
	int err = export_poll_stacks__begin(&stacks, &model, t, filter, group_by);

	if (err)
		return err;
	err = start_tree(&tree);
	if (!err) {
		poll_stacks__each(&stacks, add_poll_frame, end_poll_stack, &tree);
		err = tree.err;
	}
	if (!err)
		err = write_svg(&tree, t, out, true);
	free_tree(&tree);
	export_poll_stacks__end(&stacks, &model);
	return err;
}

static int svg_write(const struct trace_file *t, const struct export_filter *filter, FILE *out)
{
	return svg_write_grouped(t, filter, out, PROFILE_BY_TASK);
}

const struct export_format svg_export_format = {
	.name = "svg",
	.description = "an interactive flame graph of the on-CPU samples (zoom, search; opens in any browser)",
	.write = svg_write,
	.write_grouped = svg_write_grouped,
	.write_poll_time = svg_write_poll_time,
};
