/* nccl_emu.cpp — NCCL over MPI on emulated device memory (nccl_emu.h). */
#include "kernels/cuda/emu/nccl_emu.h"

#include <mpi.h>
#include <time.h>
#include <unistd.h>

#include <climits>
#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace emu {

struct nccl_comm {
  MPI_Comm mpi;
  int rank, nranks;
  char last_error[512];
};

namespace {

ncclResult_t comm_fail(ncclComm_t comm, ncclResult_t rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
ncclResult_t comm_fail(ncclComm_t comm, ncclResult_t rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(comm->last_error, sizeof comm->last_error, fmt, ap);
  va_end(ap);
  return rc;
}

ncclResult_t mpi_fail(ncclComm_t comm, int mpi_rc, const char *call) {
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  if (MPI_Error_string(mpi_rc, msg, &len) != MPI_SUCCESS) std::snprintf(msg, sizeof msg, "?");
  return comm_fail(comm, ncclSystemError, "%s: %s", call, msg);
}

#define SHIM_MPI(comm, call)                                                                       \
  do {                                                                                             \
    int rc_ = (call);                                                                              \
    if (rc_ != MPI_SUCCESS) return mpi_fail((comm), rc_, #call);                                   \
  } while (0)

/* The in-place sum over ranks of `count` elements of `type`, at most
 * INT_MAX per MPI call. */
ncclResult_t sum(ncclComm_t comm, void *buf, size_t count, MPI_Datatype type, size_t elem) {
  char *p = static_cast<char *>(buf);
  for (size_t off = 0; off < count; off += INT_MAX) {
    int n = static_cast<int>(count - off < static_cast<size_t>(INT_MAX) ? count - off : INT_MAX);
    SHIM_MPI(comm, MPI_Allreduce(MPI_IN_PLACE, p + off * elem, n, type, MPI_SUM, comm->mpi));
  }
  return ncclSuccess;
}

template <class T> void scale(void *buf, size_t count, T factor) {
  T *p = static_cast<T *>(buf);
  for (size_t i = 0; i < count; i++)
    p[i] *= factor;
}

} // namespace

ncclResult_t ncclGetUniqueId(ncclUniqueId *id) {
  if (!id) return ncclInvalidArgument;
  /* Distinct per call and per process: the pid, the clock and the id's address. */
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  long words[4] = {static_cast<long>(getpid()), static_cast<long>(ts.tv_sec), ts.tv_nsec,
                   reinterpret_cast<long>(id)};
  std::memset(id->internal, 0, sizeof id->internal);
  std::memcpy(id->internal, words, sizeof words);
  return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank) {
  if (!comm || nranks < 1 || rank < 0 || rank >= nranks) return ncclInvalidArgument;
  ncclComm_t c = new nccl_comm{MPI_COMM_NULL, rank, nranks, ""};
  ncclResult_t rc = ncclSuccess;
  int mpi_rc = MPI_Comm_split(MPI_COMM_WORLD, 0, rank, &c->mpi), size = 0, mismatch = 0, any = 0;
  ncclUniqueId root = id;
  if (mpi_rc != MPI_SUCCESS) {
    rc = mpi_fail(c, mpi_rc, "MPI_Comm_split");
  } else if ((mpi_rc = MPI_Comm_set_errhandler(c->mpi, MPI_ERRORS_RETURN)) != MPI_SUCCESS ||
             (mpi_rc = MPI_Comm_size(c->mpi, &size)) != MPI_SUCCESS ||
             (mpi_rc = MPI_Bcast(root.internal, NCCL_UNIQUE_ID_BYTES, MPI_BYTE, 0, c->mpi)) !=
                 MPI_SUCCESS) {
    rc = mpi_fail(c, mpi_rc, "MPI (communicator set-up)");
  } else {
    mismatch = size != nranks || std::memcmp(root.internal, id.internal, NCCL_UNIQUE_ID_BYTES);
    /* Every rank learns whether any rank was given another id or size. */
    mpi_rc = MPI_Allreduce(&mismatch, &any, 1, MPI_INT, MPI_LOR, c->mpi);
    if (mpi_rc != MPI_SUCCESS)
      rc = mpi_fail(c, mpi_rc, "MPI_Allreduce (unique id check)");
    else if (any)
      rc = comm_fail(c, ncclInvalidUsage,
                     "ranks disagree on the unique id or the number of ranks (this rank: %d of "
                     "%d, the MPI job has %d)",
                     rank, nranks, size);
  }
  if (rc != ncclSuccess) {
    std::fprintf(stderr, "nccl emu: ncclCommInitRank: %s\n", c->last_error);
    if (c->mpi != MPI_COMM_NULL) MPI_Comm_free(&c->mpi);
    delete c;
    return rc;
  }
  *comm = c;
  return ncclSuccess;
}

ncclResult_t ncclCommDestroy(ncclComm_t comm) {
  if (!comm) return ncclInvalidArgument;
  int rc = MPI_Comm_free(&comm->mpi);
  delete comm;
  return rc == MPI_SUCCESS ? ncclSuccess : ncclSystemError;
}

ncclResult_t ncclAllReduce(const void *sendbuff, void *recvbuff, size_t count,
                           ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm, cudaStream_t) {
  if (!comm) return ncclInvalidArgument;
  if (op != ncclSum && op != ncclAvg)
    return comm_fail(comm, ncclInvalidArgument, "reduction %d is not emulated",
                     static_cast<int>(op));
  if (datatype != ncclFloat && datatype != ncclDouble)
    return comm_fail(comm, ncclInvalidArgument, "data type %d is not emulated",
                     static_cast<int>(datatype));
  if (count && (!sendbuff || !recvbuff))
    return comm_fail(comm, ncclInvalidArgument, "NULL buffer for %zu elements", count);
  size_t elem = datatype == ncclFloat ? sizeof(float) : sizeof(double);
  if (count && sendbuff != recvbuff) std::memmove(recvbuff, sendbuff, count * elem);
  ncclResult_t rc =
      sum(comm, recvbuff, count, datatype == ncclFloat ? MPI_FLOAT : MPI_DOUBLE, elem);
  if (rc != ncclSuccess || op != ncclAvg) return rc;
  /* The mean as ctrain's MPI path forms it: the sum times 1/ranks. */
  if (datatype == ncclFloat)
    scale(recvbuff, count, 1.0f / static_cast<float>(comm->nranks));
  else
    scale(recvbuff, count, 1.0 / comm->nranks);
  return ncclSuccess;
}

ncclResult_t ncclBroadcast(const void *sendbuff, void *recvbuff, size_t count,
                           ncclDataType_t datatype, int root, ncclComm_t comm, cudaStream_t) {
  if (!comm) return ncclInvalidArgument;
  if (datatype != ncclUint8)
    return comm_fail(comm, ncclInvalidArgument, "broadcast of data type %d is not emulated",
                     static_cast<int>(datatype));
  if (root < 0 || root >= comm->nranks)
    return comm_fail(comm, ncclInvalidArgument, "root %d of %d ranks", root, comm->nranks);
  if (count && (!recvbuff || (comm->rank == root && !sendbuff)))
    return comm_fail(comm, ncclInvalidArgument, "NULL buffer for %zu bytes", count);
  if (count && comm->rank == root && sendbuff != recvbuff) std::memmove(recvbuff, sendbuff, count);
  char *p = static_cast<char *>(recvbuff);
  for (size_t off = 0; off < count; off += INT_MAX) { /* at most INT_MAX per MPI call */
    int n = static_cast<int>(count - off < static_cast<size_t>(INT_MAX) ? count - off : INT_MAX);
    SHIM_MPI(comm, MPI_Bcast(p + off, n, MPI_BYTE, root, comm->mpi));
  }
  return ncclSuccess;
}

const char *ncclGetErrorString(ncclResult_t result) {
  switch (result) {
  case ncclSuccess:
    return "no error";
  case ncclUnhandledCudaError:
    return "unhandled cuda error (run with NCCL_DEBUG=INFO for details)";
  case ncclSystemError:
    return "unhandled system error (run with NCCL_DEBUG=INFO for details)";
  case ncclInternalError:
    return "internal error - please report this issue to the NCCL developers";
  case ncclInvalidArgument:
    return "invalid argument (run with NCCL_DEBUG=WARN for details)";
  case ncclInvalidUsage:
    return "invalid usage (run with NCCL_DEBUG=WARN for details)";
  case ncclRemoteError:
    return "remote process exited or there was a network error";
  case ncclInProgress:
    return "NCCL operation in progress";
  case ncclNumResults:
    break;
  }
  return "unknown result code";
}

const char *ncclGetLastError(ncclComm_t comm) { return comm ? comm->last_error : ""; }

} // namespace emu
