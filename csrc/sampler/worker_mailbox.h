// The channel between the sampler and one Python env worker process: shared-memory mailbox slots,
// eventfd wake-ups and a lifeline socket. This header describes the protocol once and includes both
// ends; each piece has its own file:
//   unique_fd.h            ownership of the eventfds and socket ends
//   mailbox_layout.h       the wire format: word offsets, kinds, worker states, decoded messages, limits
//   mailbox_words.h        atomic access to the words of a mailbox tensor
//   mailbox_wakeup.h       eventfd signals, poll() waits and the eventcount (below)
//   sampler_mailbox_end.h  the sampler's end (WorkerChannels, SamplerMailboxEnd, abandon_if_starting)
//   worker_mailbox_end.h   the worker's end (WorkerMailboxEnd, bound to Python as pysf._C.WorkerMailbox)
#pragma once

#include "sampler/sampler_mailbox_end.h"
#include "sampler/worker_mailbox_end.h"

// ---- why not pipes --------------------------------------------------------------------------------
// Per split step the worker and the sampler exchange two tiny notifications ("stepped", "act"). Over
// pipes each was a write() and a read(), and pipe writes wake the reader with the synchronous hint
// (WF_SYNC), which invites the scheduler to run the woken thread on the writer's CPU, preempting it.
// Here the payload (a few words per split) sits in shared memory, and the wake-up is an eventfd_write()
// without that hint, issued only when the reader actually sleeps (the eventcount below). Measured on
// the 2-vCPU development VM: a report costs the worker ~12 µs when a CPU is idle (the wake-up IPI);
// with two worker processes the slow tail of reports (p90) fell from 150-240 µs to 50-75 µs. When
// other work keeps every CPU busy, the scheduler may still run the sampler's threads on the worker's
// CPU (~160 µs per report, pipes or not); only CPU affinity that keeps them apart avoids that.
//
// ---- the protocol -----------------------------------------------------------------------------------
// Per split s there are two slots, each with a sequence number bumped once per message:
//   * the command slot (sampler -> worker): ASSIGN block b (reset the split's envs, write observations
//     at step 0 of b) or ACT on (block b, step t) (actions are written: step the envs);
//   * the report slot (worker -> sampler): READY (initial observations written) or STEPPED (step t+1
//     observations and step t rewards/flags written), with the episodes that finished in that step.
// Commands and reports of one split strictly alternate (ASSIGN, READY, ACT, STEPPED, ACT, STEPPED, ...),
// so one slot per direction and split is enough: a writer never overwrites a message its reader has not
// consumed (the sampler reads a report completely before it submits the inference request that leads
// to the next command, and the worker copies a command's fields before it posts the report).
// A mailbox is created zeroed (sequence numbers 0: nothing posted) before either process uses it. Its
// header holds the STOP word (the worker must exit), the worker's start-up state (below) and the two
// "waiting" words (below).
//
// Writing a message: store the fields, store the sequence number (release), then wake the reader if it
// waits. Reading: load the sequence number (acquire); if it changed, load the fields. The acquire/release
// pair orders the fields, and the trajectory-buffer data written before the message (by C++, or by numpy
// earlier on the same thread), before the reader's accesses on every architecture; nothing relies on
// x86's strong ordering.
//
// Waking without losing a wake-up, and without a syscall when the reader is busy (an eventcount):
//   reader, with nothing new:  waiting = 1; fence(seq_cst); scan again; poll() on its eventfd only if
//                              that scan found nothing either; after waking, reset the eventfd (read)
//                              and waiting = 0;
//   writer, after the release: fence(seq_cst); if (waiting) eventfd_write().
// The two seq_cst fences make it impossible that the writer reads waiting == 0 *and* the reader's second
// scan misses the message: either the reader sees the message, or the writer sees the reader waiting
// and signals. A signal that arrives after the reader already woke leaves the counter non-zero; the
// next poll() then returns at once and the scan finds nothing new (a harmless spurious wake-up). Busy
// readers (the worker stepping its other split, the proxy handling a report) cost the writer no
// syscall; a sleeping one costs one eventfd_write, which wakes it without the synchronous hint. STOP
// is signalled unconditionally, so a worker that checked the STOP word just before it slept still wakes.
//
// Words are accessed atomically across the two processes (mailbox_words.h says why that works).
//
// ---- stalls ---------------------------------------------------------------------------------------
// The progress word in the header is the worker's heartbeat: it bumps it with every report and at every
// check between slow start-up steps (each env created, every few warm-up steps). The sampler knows from
// the sequence numbers alone whether the worker owes a report (a command slot's number is ahead of its
// report slot's). A worker that owes a report and whose progress word has not moved for the stall limit
// is stuck (an env call that never returns, a frozen process); an idle worker owes nothing and is never
// stuck. A heartbeat from a helper thread would be wrong here: it keeps beating while the env hangs.
//
// ---- start-up, death and errors ----------------------------------------------------------------------
// The lifeline is a connected socket pair; each process keeps one end and never writes to it, except
// the worker, once, with an error text just before it exits. A sampler thread that does nothing else
// polls the sampler's end (the proxy thread may be blocked waiting for a free trajectory block, and a
// death must still be noticed at once): readable data is the error text, a hang-up without data means
// the worker exited unexpectedly. The worker polls its end while it waits: a hang-up means the sampler
// is gone, which it treats like STOP.
//
// A worker that is still starting (a spawned interpreter importing torch takes seconds on a busy
// machine) cannot see STOP. The worker-state word settles who goes first with one compare-and-swap
// each: the worker attaches (kStarting -> kAttached) before it creates its envs; a stopping sampler
// abandons it (kStarting -> kAbandoned). If the sampler wins, the worker holds nothing yet and can be
// terminated at once (and would exit by itself on attaching); if the worker wins, it sees STOP as usual.
