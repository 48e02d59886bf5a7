/* streams.cpp — the SIMT host emulator's streams and events (emu.h).
 *
 * Each stream is a deferred queue: work issued to it runs only when
 * something needs it done — a synchronisation of the stream, of an event
 * recorded on it or of the device, an event another stream waits for when
 * that stream runs, a blocking copy. So a stream reading another stream's
 * output with no event between them reads what was there before, as it may
 * on a GPU where the two run at the same time.
 *
 * And the emulator says so: each item of work carries a vector clock (how
 * much of each stream's work is ordered before it: by its own stream, by
 * cudaStreamWaitEvent, by what the host synchronised before issuing it), and
 * the device memory it reaches. An item that reaches memory an earlier item
 * of another stream reaches, when neither is ordered before the other, is a
 * race, reported when the second is issued, whatever the order the queues
 * then run in. Memory is compared by range where the extent is known
 * (copies, cuBLAS, NCCL) and by address where it is not (a kernel's pointer
 * arguments); reads and writes are not told apart, so two streams reading
 * the same buffer unordered would be reported too (ctrain's second streams
 * run only collectives, which write what they reach). */
#include "kernels/cuda/emu/emu.h"

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <vector>

namespace emu {

namespace {

/* vc[id]: how many items of stream id's work are ordered before. */
using clock_vec = std::vector<uint64_t>;

uint64_t at(const clock_vec &v, int id) {
  return static_cast<size_t>(id) < v.size() ? v[static_cast<size_t>(id)] : 0;
}

void merge(clock_vec &into, const clock_vec &from) {
  if (into.size() < from.size()) into.resize(from.size(), 0);
  for (size_t i = 0; i < from.size(); i++)
    if (from[i] > into[i]) into[i] = from[i];
}

void set(clock_vec &v, int id, uint64_t seq) {
  if (v.size() <= static_cast<size_t>(id)) v.resize(static_cast<size_t>(id) + 1, 0);
  v[static_cast<size_t>(id)] = seq;
}

struct item {
  uint64_t seq;
  std::function<void()> run;
};

/* An issued item later items of other streams may race with. */
struct past {
  uint64_t seq;
  clock_vec vc;
  std::vector<span> spans;
  const char *what;
};

/* Items a stream remembers for the race check: enough for a step's worth
 * of launches between host synchronisations, which forget them anyway. */
constexpr size_t HISTORY = 4096;

double now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

} // namespace

/* A capture's recorded work: re-runnable, owning its arguments. */
struct node_rec {
  std::function<void()> run;
  std::vector<span> spans;
};

struct graph_rec {
  int origin; /* the stream that began the capture */
  bool spoilt = false;
  bool collectives = false;
  std::vector<node_rec> nodes;
};

struct graph_exec_rec {
  std::shared_ptr<const std::vector<node_rec>> nodes;
  std::vector<span> spans; /* every node's, for the race check of a launch */
  bool collectives;
};

struct stream_rec {
  int id;
  uint64_t issued = 0, done = 0;
  clock_vec vc; /* what the next item is ordered after */
  std::deque<item> queue;
  std::deque<past> history;
  graph_rec *capture = nullptr; /* the capture its work goes into */
  bool unjoined = false;        /* joined a capture, recorded work not yet joined back */
  bool collective_next = false; /* stream_mark_collective */
};

struct event_rec {
  graph_rec *capture;         /* recorded in a capture: a wait joins the waiter to it */
  int stream;                 /* the stream recorded on; 0: none (complete) */
  uint64_t seq;               /* the items of that stream it captured: its first seq */
  clock_vec vc;               /* what those items are ordered after */
  std::shared_ptr<double> ms; /* when they completed; < 0 until then */
};

namespace {

std::map<int, stream_rec *> streams;  /* live streams by id, in creation order */
std::vector<graph_rec *> open_graphs; /* captures begun and not ended */
int next_id = 1;
clock_vec host_vc; /* the work the host has seen complete */

stream_rec *find(int id) {
  auto it = streams.find(id);
  return it == streams.end() ? nullptr : it->second;
}

/* Runs s's queue until its first `seq` items are done; an item waiting for
 * another stream runs that stream first. */
void drain(stream_rec *s, uint64_t seq) {
  while (s->done < seq && !s->queue.empty()) {
    item it = std::move(s->queue.front());
    s->queue.pop_front();
    it.run();
    s->done = it.seq;
  }
}

/* Items every later item is ordered after need no check. */
void forget_seen() {
  for (auto &[id, s] : streams)
    while (!s->history.empty() && s->history.front().seq <= at(host_vc, id))
      s->history.pop_front();
}

bool overlap(const span &a, const span &b) {
  uintptr_t pa = reinterpret_cast<uintptr_t>(a.p), pb = reinterpret_cast<uintptr_t>(b.p);
  if (!a.bytes && !b.bytes) return pa == pb;
  if (!a.bytes) return pb <= pa && pa < pb + b.bytes;
  if (!b.bytes) return pa <= pb && pb < pa + a.bytes;
  return pa < pb + b.bytes && pb < pa + a.bytes;
}

[[noreturn]] void report(const stream_rec *s, const char *what, const stream_rec *o, const past &p,
                         const span &x) {
  std::fprintf(stderr,
               "emu: stream race: %s on stream %d and %s on stream %d both reach device memory at "
               "%p, and no event orders them (on a GPU the two streams may run them at the same "
               "time: record an event after the first and cudaStreamWaitEvent before the "
               "second)\n",
               p.what, o->id, what, s->id, x.p);
  std::_Exit(70);
}

/* The next item of s: ordered after what the host has seen, checked against
 * the other streams' unordered items, remembered. Returns its seq. */
uint64_t enter(stream_rec *s, const char *what, const span *spans, size_t n) {
  merge(s->vc, host_vc);
  uint64_t seq = ++s->issued;
  set(s->vc, s->id, seq);
  for (auto &[id, o] : streams) {
    if (o == s || !n) continue;
    uint64_t seen = at(s->vc, id);
    for (const past &p : o->history) {
      if (p.seq <= seen) continue;
      for (size_t i = 0; i < n; i++)
        for (const span &q : p.spans)
          if (spans[i].p && overlap(spans[i], q)) report(s, what, o, p, spans[i]);
    }
  }
  if (n) {
    s->history.push_back(past{seq, s->vc, std::vector<span>(spans, spans + n), what});
    if (s->history.size() > HISTORY) s->history.pop_front();
  }
  return seq;
}

void push(stream_rec *s, uint64_t seq, std::function<void()> run) {
  s->queue.push_back(item{seq, std::move(run)});
}

void host_saw(const clock_vec &vc) {
  merge(host_vc, vc);
  forget_seen();
}

cudaError_t bad(cudaError_t e) { return record_error(e); }

bool open_graph(const graph_rec *g) {
  for (const graph_rec *o : open_graphs)
    if (o == g) return true;
  return false;
}

/* A synchronisation while capture g is open: refused, and g spoilt. */
cudaError_t refuse(graph_rec *g) {
  g->spoilt = true;
  return bad(cudaErrorStreamCaptureUnsupported);
}

} // namespace

cudaError_t refuse_during_capture() {
  if (open_graphs.empty()) return cudaSuccess;
  for (graph_rec *g : open_graphs)
    g->spoilt = true;
  return bad(cudaErrorStreamCaptureUnsupported);
}

bool stream_capturing(stream_rec *s) { return s && s->capture; }

void stream_mark_collective(stream_rec *s) {
  if (s) s->collective_next = true;
}

void device_drain() {
  for (auto &[id, s] : streams) {
    drain(s, s->issued);
    merge(host_vc, s->vc);
  }
  forget_seen();
}

void stream_issue(stream_rec *s, const char *what, const span *spans, size_t n, void (*run)(void *),
                  void *ctx, void (*release)(void *)) {
  if (s && s->capture) {
    std::shared_ptr<void> args(
        ctx, release ? release : [](void *) {});
    s->capture->nodes.push_back(
        node_rec{[run, args] { run(args.get()); }, std::vector<span>(spans, spans + n)});
    if (s->collective_next) s->capture->collectives = true;
    s->collective_next = false;
    if (s->capture->origin != s->id) s->unjoined = true;
    return;
  }
  if (!s) {
    device_drain();
    run(ctx);
    if (release) release(ctx);
    return;
  }
  uint64_t seq = enter(s, what, spans, n);
  push(s, seq, [run, ctx, release] {
    run(ctx);
    if (release) release(ctx);
  });
}

void stream_issue_now(stream_rec *s, const char *what, const span *spans, size_t n) {
  if (!s) return device_drain();
  uint64_t seq = enter(s, what, spans, n);
  drain(s, seq - 1);
  s->done = seq;
}

cudaError_t cudaStreamCreate(cudaStream_t *s) {
  if (!s) return bad(cudaErrorInvalidValue);
  stream_rec *r = new stream_rec;
  r->id = next_id++;
  streams[r->id] = r;
  *s = r;
  return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags) {
  if (flags & ~cudaStreamNonBlocking) return bad(cudaErrorInvalidValue);
  return cudaStreamCreate(s);
}

/* As on a GPU, the stream's pending work still runs. */
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  if (!s || !find(s->id)) return bad(cudaErrorInvalidResourceHandle);
  drain(s, s->issued);
  streams.erase(s->id);
  delete s;
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t s) {
  if (!s) {
    if (cudaError_t r = refuse_during_capture()) return r;
    device_drain();
    return cudaSuccess;
  }
  if (s->capture) return refuse(s->capture);
  drain(s, s->issued);
  host_saw(s->vc);
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t *e) {
  if (!e) return bad(cudaErrorInvalidValue);
  *e = new event_rec{nullptr, 0, 0, {}, std::make_shared<double>(0.0)};
  return cudaSuccess;
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags) {
  if (flags & ~cudaEventDisableTiming) return bad(cudaErrorInvalidValue);
  return cudaEventCreate(e);
}

cudaError_t cudaEventDestroy(cudaEvent_t e) {
  if (!e) return bad(cudaErrorInvalidResourceHandle);
  delete e; /* a pending record still sets its time, which it shares */
  return cudaSuccess;
}

/* The event captures the work issued to s so far; it completes (and takes
 * its time) when s runs that far. */
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
  if (!e) return bad(cudaErrorInvalidResourceHandle);
  e->ms = std::make_shared<double>(-1.0);
  e->capture = nullptr;
  if (s && s->capture) { /* a node of the capture others can wait for */
    e->capture = s->capture;
    e->stream = s->id;
    return cudaSuccess;
  }
  if (!s) {
    device_drain();
    *e->ms = now_ms();
    e->stream = 0;
    return cudaSuccess;
  }
  uint64_t seq = enter(s, "cudaEventRecord", nullptr, 0);
  e->stream = s->id;
  e->seq = seq;
  e->vc = s->vc;
  push(s, seq, [ms = e->ms] { *ms = now_ms(); });
  return cudaSuccess;
}

cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned flags) {
  if (!e) return bad(cudaErrorInvalidResourceHandle);
  if (flags) return bad(cudaErrorInvalidValue);
  if (e->capture && open_graph(e->capture)) {
    if (!s) return refuse(e->capture);
    if (!s->capture) s->capture = e->capture; /* s joins the capture */
    if (s->capture != e->capture) return refuse(s->capture);
    stream_rec *from = find(e->stream);
    if (from && s->id == s->capture->origin) from->unjoined = false; /* joined back */
    return cudaSuccess;
  }
  if (s && s->capture) return refuse(s->capture); /* work from outside the capture */
  if (!e->stream) return cudaSuccess;             /* nothing captured, nothing to wait for */
  if (!s) {
    if (stream_rec *o = find(e->stream)) drain(o, e->seq);
    return cudaSuccess;
  }
  merge(s->vc, e->vc);
  uint64_t seq = enter(s, "cudaStreamWaitEvent", nullptr, 0);
  push(s, seq, [id = e->stream, upto = e->seq] {
    if (stream_rec *o = find(id)) drain(o, upto);
  });
  return cudaSuccess;
}

/* Runs the work e captured, then the host has seen it. */
static void event_wait(cudaEvent_t e) {
  if (!e->stream) return;
  if (stream_rec *o = find(e->stream)) drain(o, e->seq);
  host_saw(e->vc);
}

cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  if (!e) return bad(cudaErrorInvalidResourceHandle);
  if (e->capture && open_graph(e->capture)) return refuse(e->capture);
  event_wait(e);
  return cudaSuccess;
}

cudaError_t cudaEventQuery(cudaEvent_t e) {
  if (!e) return bad(cudaErrorInvalidResourceHandle);
  if (e->capture && open_graph(e->capture)) return refuse(e->capture);
  event_wait(e);
  return cudaSuccess;
}

cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end) {
  if (!ms) return bad(cudaErrorInvalidValue);
  if (!start || !end) return bad(cudaErrorInvalidResourceHandle);
  if (*start->ms < 0 || *end->ms < 0) return cudaErrorNotReady; /* a state, not a sticky error */
  *ms = static_cast<float>(*end->ms - *start->ms);
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() {
  if (cudaError_t r = refuse_during_capture()) return r;
  device_drain();
  return cudaSuccess;
}

cudaError_t cudaDeviceGetStreamPriorityRange(int *least, int *greatest) {
  if (least) *least = 0;
  if (greatest) *greatest = 0;
  return cudaSuccess;
}

cudaError_t cudaStreamCreateWithPriority(cudaStream_t *s, unsigned flags, int priority) {
  (void)priority; /* CUDA clamps it into the range, which here is 0 alone */
  return cudaStreamCreateWithFlags(s, flags);
}

/* ---- asynchronous copies and fills ------------------------------------------------------ */
namespace {
struct copy_job {
  void *dst;
  const void *src;
  size_t bytes;
  cudaMemcpyKind kind;
  std::vector<unsigned char> staged; /* a host source, copied when issued */
  int value;                         /* a fill's byte */
};

void run_copy(void *p) {
  copy_job *j = static_cast<copy_job *>(p);
  count_copy(j->kind, j->bytes); /* when it runs: each launch of a graph holding it counts */
  device_scope scope;
  device_touch(j->dst);
  device_touch(j->src);
  std::memmove(j->dst, j->staged.empty() ? j->src : j->staged.data(), j->bytes);
}

void run_fill(void *p) {
  copy_job *j = static_cast<copy_job *>(p);
  device_scope scope;
  device_touch(j->dst);
  std::memset(j->dst, j->value, j->bytes);
}

void release_job(void *p) { delete static_cast<copy_job *>(p); }
} // namespace

/* From pageable host memory the source is staged when the call is made and
 * into it the call returns when the copy is done, as CUDA does: only device
 * to device copies wait in the queue untouched. */
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream) {
  if (kind == cudaMemcpyDefault)
    kind = device_holds(dst)
               ? (device_holds(src) ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
               : (device_holds(src) ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDeviceToDevice)
    return bad(cudaErrorInvalidMemcpyDirection);
  if (bytes && (!dst || !src)) return bad(cudaErrorInvalidValue);
  if (!bytes) return cudaSuccess;
  if (kind == cudaMemcpyHostToHost) {
    std::memmove(dst, src, bytes);
    return cudaSuccess;
  }
  if (kind != cudaMemcpyDeviceToDevice && stream && stream->capture)
    return refuse(stream->capture); /* a graph copies device memory only */
  copy_job *j = new copy_job{dst, src, bytes, kind, {}, 0};
  span spans[2];
  size_t n = 0;
  if (kind != cudaMemcpyDeviceToHost) spans[n++] = span{dst, bytes};
  if (kind != cudaMemcpyHostToDevice) spans[n++] = span{src, bytes};
  if (kind == cudaMemcpyHostToDevice) {
    const unsigned char *h = static_cast<const unsigned char *>(src);
    j->staged.assign(h, h + bytes);
  }
  stream_issue(stream, "cudaMemcpyAsync", spans, n, run_copy, j, release_job);
  return kind == cudaMemcpyDeviceToHost ? cudaStreamSynchronize(stream) : cudaSuccess;
}

cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t stream) {
  if (bytes && !p) return bad(cudaErrorInvalidValue);
  if (!bytes) return cudaSuccess;
  span sp{p, bytes};
  stream_issue(stream, "cudaMemsetAsync", &sp, 1, run_fill,
               new copy_job{p, p, bytes, cudaMemcpyDeviceToDevice, {}, value}, release_job);
  return cudaSuccess;
}

} // namespace emu

/* ---- CUDA Graphs by stream capture (emu.h) ---------------------------------------------- */
namespace emu {

cudaError_t cudaStreamBeginCapture(cudaStream_t s, cudaStreamCaptureMode mode) {
  if (!s || mode < cudaStreamCaptureModeGlobal || mode > cudaStreamCaptureModeRelaxed)
    return bad(cudaErrorInvalidValue);
  if (s->capture) return refuse(s->capture);
  s->capture = new graph_rec{s->id, false, false, {}};
  open_graphs.push_back(s->capture);
  return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *graph) {
  if (!s || !graph) return bad(cudaErrorInvalidValue);
  graph_rec *g = s->capture;
  if (!g) return bad(cudaErrorInvalidValue);
  if (g->origin != s->id) return bad(cudaErrorStreamCaptureWrongThread);
  cudaError_t rc = g->spoilt ? cudaErrorStreamCaptureInvalidated : cudaSuccess;
  for (auto &[id, o] : streams) {
    if (o->capture != g) continue;
    if (o->unjoined && rc == cudaSuccess) rc = cudaErrorStreamCaptureUnjoined;
    o->capture = nullptr;
    o->unjoined = false;
  }
  for (size_t i = 0; i < open_graphs.size(); i++)
    if (open_graphs[i] == g) open_graphs.erase(open_graphs.begin() + static_cast<long>(i));
  if (rc != cudaSuccess) {
    delete g;
    *graph = nullptr;
    return bad(rc);
  }
  *graph = g;
  return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t s, cudaStreamCaptureStatus *status) {
  if (!status) return bad(cudaErrorInvalidValue);
  *status = !s || !s->capture    ? cudaStreamCaptureStatusNone
            : s->capture->spoilt ? cudaStreamCaptureStatusInvalidated
                                 : cudaStreamCaptureStatusActive;
  return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long) {
  if (!exec || !graph) return bad(cudaErrorInvalidValue);
  auto nodes = std::make_shared<const std::vector<node_rec>>(graph->nodes);
  std::vector<span> spans;
  for (const node_rec &n : *nodes)
    spans.insert(spans.end(), n.spans.begin(), n.spans.end());
  *exec = new graph_exec_rec{nodes, std::move(spans), graph->collectives};
  return cudaSuccess;
}

namespace {
struct replay {
  std::shared_ptr<const std::vector<node_rec>> nodes;
};
void run_replay(void *p) {
  for (const node_rec &n : *static_cast<replay *>(p)->nodes)
    n.run();
}
void release_replay(void *p) { delete static_cast<replay *>(p); }
} // namespace

/* One item of s. With collectives it runs at once, after s's earlier work,
 * as a collective does (nccl_emu.h): the other ranks wait for it. */
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t s) {
  if (!exec) return bad(cudaErrorInvalidValue);
  if (s && s->capture) return refuse(s->capture);
  count_graph_launch();
  const span *spans = exec->spans.data();
  size_t n = exec->spans.size();
  if (exec->collectives) {
    stream_issue_now(s, "cudaGraphLaunch", spans, n);
    replay r{exec->nodes};
    run_replay(&r);
    return cudaSuccess;
  }
  stream_issue(s, "cudaGraphLaunch", spans, n, run_replay, new replay{exec->nodes}, release_replay);
  return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  if (!exec) return bad(cudaErrorInvalidValue);
  delete exec; /* a queued launch keeps the nodes it runs */
  return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  if (!graph) return bad(cudaErrorInvalidValue);
  delete graph;
  return cudaSuccess;
}

} // namespace emu
