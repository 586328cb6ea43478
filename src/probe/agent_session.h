/* The in-process capture backend, record's side: the shared region (a
 * memfd the agent maps in the target), the handshake with the agent's
 * constructor, and the drain that turns full buffers of 32-byte records
 * into trace events on CLOCK_MONOTONIC, stream by stream, in order. */
#ifndef ASYNCTRACE_PROBE_AGENT_SESSION_H
#define ASYNCTRACE_PROBE_AGENT_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "elf/pollfn.h"
#include "probe/agent_plan.h"
#include "trace/trace.h"

struct agent_session;

/* A run of events of one stream (a thread instance of the target). */
typedef int (*agent_events_fn)(uint64_t stream, uint32_t tid, const struct trace_event *events,
			       size_t count, void *ctx);
/* The name a thread had when it took a buffer (the latest wins). */
typedef void (*agent_thread_fn)(uint32_t tid, const char *comm, void *ctx);
/* The stream's thread is gone: nothing more will come of it. */
typedef int (*agent_stream_end_fn)(uint64_t stream, void *ctx);

struct agent_session_callbacks {
	agent_events_fn on_events;
	agent_thread_fn on_thread;
	agent_stream_end_fn on_stream_end;
	void *ctx;
};

/* The agent library: next to the running asynctrace binary, or in its
 * install prefix's lib/asynctrace/. Returns a malloc'ed path or NULL. */
char *agent_session__find_library(void);
/* Why the in-process backend cannot trace the ELF at path, or NULL when it
 * can (dynamically linked, x86_64, invariant TSC). */
const char *agent_session__unsupported(const char *path, uint16_t machine);

/* Creates the region (pool_bytes of buffers) holding the plan. Returns 0
 * or a negative errno. */
int agent_session__create(struct agent_session **out, const struct agent_plan_set *plan,
			  const struct poll_fn_list *fns, size_t pool_bytes,
			  const struct agent_session_callbacks *callbacks);
/* The target's environment: environ plus LD_PRELOAD (the agent appended to
 * the user's), the region's fd and the user's LD_PRELOAD to restore.
 * malloc'ed, NULL-terminated; free with agent_session__free_env. */
char **agent_session__child_env(struct agent_session *s, const char *agent_path);
void agent_session__free_env(char **env);
/* The region's fd, which the child must inherit. */
int agent_session__fd(const struct agent_session *s);
void agent_session__set_target(struct agent_session *s, pid_t pid);
/* Waits up to timeout_ms for the agent's constructor to report. Returns
 * AGENT_PATCHED, AGENT_REFUSED (message in *why), or -ETIMEDOUT (the
 * agent never loaded). */
int agent_session__wait_agent(struct agent_session *s, int timeout_ms, const char **why);
/* After AGENT_PATCHED: the agent's result for func_id (AGENT_PATCH_*), or
 * AGENT_PATCH_PENDING for functions that were not in the plan. */
int agent_session__result(const struct agent_session *s, uint32_t func_id);
/* The same for the plan's site `site` (index in agent_plan_set.sites). */
int agent_session__site_result(const struct agent_session *s, size_t site);
uint64_t agent_session__load_bias(const struct agent_session *s);
/* Lets the target run main. */
void agent_session__go(struct agent_session *s);
/* Writes out every buffer the agent handed over (final: every buffer,
 * the target being gone). Returns 0 or the callback's error. */
int agent_session__drain(struct agent_session *s, bool final);
/* Sleeps until the agent hands a buffer over, or timeout_ms. */
void agent_session__wait(struct agent_session *s, int timeout_ms);
/* Records the agent dropped (no free buffer) or never completed. */
uint64_t agent_session__lost(const struct agent_session *s);
uint64_t agent_session__records(const struct agent_session *s);
void agent_session__free(struct agent_session *s);

#endif
