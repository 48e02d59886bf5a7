/* augment.cu — a training batch made on the device from the rank's resident
 * uint8 images: one block per image stages it in shared memory (the
 * rotation's bilinear taps read it four times), thread 0 makes the image's
 * random draws, and every thread writes pixels with ops_shared.h's maths, the
 * CPU's exactly. */
#include "kernels/cuda/common.cuh"

#define AUG_THREADS 256

__global__ void augment_kernel(struct augment_params a, int valid, const uint8_t *__restrict__ src,
                               const int32_t *__restrict__ labels, uint64_t pos0, uint64_t pos_step,
                               float *__restrict__ x, int32_t *__restrict__ y) {
  __shared__ uint8_t img[AUG_IMAGE];
  __shared__ struct ops_aug_draw draw;
  int r = blockIdx.x;
  float *out = x + (size_t)r * AUG_IMAGE;
  if (r >= valid) { /* the tail of the epoch's last batch */
    for (int i = threadIdx.x; i < AUG_IMAGE; i += blockDim.x)
      out[i] = 0.0f;
    if (threadIdx.x == 0) y[r] = -1;
    return;
  }
  const uint8_t *in = src + (size_t)r * AUG_IMAGE;
  for (int i = threadIdx.x; i < AUG_IMAGE; i += blockDim.x)
    img[i] = in[i];
  if (threadIdx.x == 0) {
    draw = ops_aug_draw(&a, pos0 + (uint64_t)r * pos_step);
    y[r] = labels[r];
  }
  __syncthreads();
  for (int i = threadIdx.x; i < AUG_IMAGE; i += blockDim.x) {
    int c = i / AUG_PLANE, yy = (i / AUG_SIDE) % AUG_SIDE, xx = i % AUG_SIDE;
    out[i] = ops_aug_pixel(&a, &draw, img, c, yy, xx);
  }
}

extern "C" void cuda_augment(const struct ops_ctx *ctx, const struct augment_params *a, int n,
                             int valid, const uint8_t *src, const int32_t *labels, uint64_t pos0,
                             uint64_t pos_step, float *x, int32_t *y) {
  if (n <= 0) return;
  LAUNCH(augment_kernel, n, AUG_THREADS, 0, cuda_stream(ctx))
  (*a, valid, src, labels, pos0, pos_step, x, y);
  LAUNCH_CHECK("augment_kernel");
}
