// pov's int4 expert kernel: y = w2(silu(w1 x) * w3 x) over the packed weights of an int4 bundle
// (com.microsoft MatMulNBits layout, model/onnx/quant.ts), as a Node-API addon.
//
// Why not onnxruntime's MatMulNBits: at batch 1 (decoding) it read the weights at a third of the
// machine's memory bandwidth, from batch 4 up it ran slower than int8, and it keeps a prepacked
// copy beside the mapped weights (docs/quality.md, the edge case). This kernel:
//  - repacks each weight once, at load, into tiles of 16 output columns: one 64-byte chunk holds
//    8 consecutive k of 16 columns (byte i of lane j: k0+i in the low nibble, k0+4+i in the high),
//    so one AVX-512 VNNI instruction multiplies 4 k of 16 columns by 4 broadcast int8 activations
//    and no horizontal sum is ever needed; the file's pages are then dropped (resident once);
//  - quantises activations to int8 per block of K (scale max|x|/127), as MatMulNBits'
//    accuracy_level 4 does: integer dot products are exact, the zero point is taken out per block
//    with Σ q_x, and only per-block scaling is float;
//  - runs the three products on a fork-join pool (no spinning: nodes share cores), splitting
//    tiles of output columns, with silu·gate fused into the w1/w3 pass.
// Paths: AVX-512 VNNI, AVX2 (maddubs + madd), portable C++ (reference and non-x86); chosen at run
// time, so one build works on every x86-64 CPU.
#include <node_api.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define POV_X86 1
#endif

namespace {

constexpr int TILE = 16;   // output columns per tile (one zmm of i32/f32 lanes)
constexpr int CHUNK_K = 8;  // k per 64-byte chunk (4 in the low nibbles, 4 in the high)
constexpr int CHUNK_BYTES = 64;
#ifndef PREFETCH_BYTES
#define PREFETCH_BYTES 2048
#endif

// ---------------------------------------------------------------------------------------------
// Weights

struct Linear {
  int n = 0, k = 0, block = 0, kBlocks = 0, tiles = 0, chunks = 0;  // chunks per block
  uint8_t* w = nullptr;  // [tiles][kBlocks][chunks][64]
  float* s = nullptr;    // [tiles][kBlocks][16]
  uint8_t* z = nullptr;  // [tiles][kBlocks][16]
  size_t wBytes() const { return size_t(tiles) * kBlocks * chunks * CHUNK_BYTES; }
  size_t sBytes() const { return size_t(tiles) * kBlocks * TILE * sizeof(float); }
  size_t zBytes() const { return size_t(tiles) * kBlocks * TILE; }
  int kPad() const { return kBlocks * block; }
};

struct Expert {
  Linear w1, w3, w2;
  int hidden = 0, inter = 0;
  void* mem = nullptr;
  size_t memBytes = 0;
  int refs = 1;        // the JS handle + runs in flight (touched on the JS thread only)
  bool freed = false;  // free() was called: runs are refused
};

void releaseExpert(Expert* e) {
  if (e->mem != nullptr) munmap(e->mem, e->memBytes);
  delete e;
}

void unref(Expert* e) {
  if (--e->refs == 0) {
    releaseExpert(e);
  } else if (e->freed && e->refs == 1 && e->mem != nullptr) {
    // free() was called while runs were in flight: the last of them drops the weights
    munmap(e->mem, e->memBytes);
    e->mem = nullptr;
  }
}

size_t align64(size_t v) { return (v + 63) & ~size_t(63); }

/** Where one MatMulNBits weight lies in the data file (offsets and lengths in bytes). */
struct Source {
  int n, k, block;
  size_t bOff, bLen, sOff, sLen, zOff, zLen;
};

inline int nibble(const uint8_t* p, int e) { return (p[e >> 1] >> ((e & 1) * 4)) & 15; }

// Repacks tiles [t0, t1) of one weight from the MatMulNBits layout:
// B [n][kBlocks][block/2] (element 2i in the low nibble), scales [n * kBlocks] float,
// zero points [n][ceil(kBlocks/2)] (block 2i in the low nibble).
void repack(const Linear& L, const uint8_t* b, const float* s, const uint8_t* z, int t0, int t1) {
  const int half = L.block / 2;
  const int zRow = (L.kBlocks + 1) / 2;
  for (int t = t0; t < t1; t++)
    for (int blk = 0; blk < L.kBlocks; blk++) {
      const size_t tb = size_t(t) * L.kBlocks + blk;
      uint8_t* dst = L.w + tb * L.chunks * CHUNK_BYTES;
      for (int j = 0; j < TILE; j++) {
        const int n = t * TILE + j;
        if (n >= L.n) {  // padding columns: zero weight, scale and zero point
          for (int c = 0; c < L.chunks; c++) std::memset(dst + c * CHUNK_BYTES + j * 4, 0, 4);
          L.s[tb * TILE + j] = 0.f;
          L.z[tb * TILE + j] = 0;
          continue;
        }
        const uint8_t* src = b + (size_t(n) * L.kBlocks + blk) * half;
        for (int c = 0; c < L.chunks; c++)
          for (int i = 0; i < 4; i++) {
            const int e = c * CHUNK_K + i;
            dst[c * CHUNK_BYTES + j * 4 + i] =
                uint8_t(nibble(src, e) | (nibble(src, e + 4) << 4));
          }
        L.s[tb * TILE + j] = s[size_t(n) * L.kBlocks + blk];
        L.z[tb * TILE + j] = uint8_t((z[size_t(n) * zRow + (blk >> 1)] >> ((blk & 1) * 4)) & 15);
      }
    }
}

// ---------------------------------------------------------------------------------------------
// Parallel for: the items of a phase are taken in chunks from a shared counter by the calling
// thread and by whichever workers are awake, so nobody waits for a worker the scheduler has not
// run yet: on a machine whose cores are shared, a fixed half per thread made the caller wait for
// a late worker's half at every phase (measured on 2 shared cores: a batch-64 run's wall time
// equal to its CPU time, i.e. one thread's worth). A worker that wakes after the items are gone
// does nothing. A worker polls for the next phase for POLL after each (the phases of one run come
// back to back, and a worker put to sleep between them was woken too late to help on a loaded
// machine), then sleeps on a condition variable: an idle node leaves its cores to others.
// One job at a time per process (jobMutex).

constexpr auto POLL = std::chrono::microseconds(50);

inline void relax() {
#ifdef POV_X86
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

class Pool {
 public:
  explicit Pool(int threads) : threads_(std::max(1, threads)) {
    for (int i = 1; i < threads_; i++) workers_.emplace_back([this] { loop(); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> g(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }
  int threads() const { return threads_; }

  // body(begin, end) over [0, n) in chunks of `grain` items.
  void parallelFor(int n, int grain, const std::function<void(int, int)>& body) {
    if (n <= 0) return;
    grain = std::max(1, grain);
    if (threads_ == 1 || n <= grain) {
      body(0, n);
      return;
    }
    {
      std::lock_guard<std::mutex> g(mu_);
      body_ = &body;
      n_ = n;
      grain_ = grain;
      next_.store(0);
      open_.store(true);
      gen_.fetch_add(1);
    }
    cv_.notify_all();
    work();
    open_.store(false);
    // only workers already inside the job are waited for (each finishes its chunk)
    while (inside_.load() != 0) std::this_thread::yield();
  }

 private:
  void work() {
    for (;;) {
      const int a = next_.fetch_add(grain_);
      if (a >= n_) return;
      (*body_)(a, std::min(n_, a + grain_));
    }
  }
  void loop() {
    uint64_t seen = 0;
    for (;;) {
      const auto until = std::chrono::steady_clock::now() + POLL;
      for (int i = 0; gen_.load() == seen; i++) {
        relax();
        if ((i & 63) == 63 && std::chrono::steady_clock::now() > until) break;
      }
      {
        std::unique_lock<std::mutex> g(mu_);
        cv_.wait(g, [&] { return stop_ || gen_.load() != seen; });
        if (stop_) return;
        seen = gen_.load();
      }
      inside_.fetch_add(1);
      if (open_.load()) work();  // the job the caller is still in (its fields are set before open_)
      inside_.fetch_sub(1);
    }
  }
  int threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<uint64_t> gen_{0};
  bool stop_ = false;
  const std::function<void(int, int)>* body_ = nullptr;
  int n_ = 0, grain_ = 1;
  std::atomic<int> next_{0};
  std::atomic<int> inside_{0};
  std::atomic<bool> open_{false};
};

std::mutex jobMutex;  // held for a whole load or run; guards pool too
Pool* pool = nullptr;
int wantThreads = 0;  // 0: hardware concurrency

Pool& getPool() {
  const int want = wantThreads > 0 ? wantThreads : int(std::max(1u, std::thread::hardware_concurrency()));
  if (pool == nullptr || pool->threads() != want) {
    delete pool;
    pool = new Pool(want);
  }
  return *pool;
}


// ---------------------------------------------------------------------------------------------
// Activations: int8 per block, scale max|x| / 127 (round to nearest even, as the vector path of
// MatMulNBits does), and per (row, block) the scale and scale · Σq for the zero-point term.

struct QuantRows {
  int rows = 0, kPad = 0, kBlocks = 0;
  std::vector<int8_t> q;    // [rows][kPad]
  std::vector<float> sa;    // [rows][kBlocks]
  std::vector<float> sasum; // [rows][kBlocks]
  void resize(int r, int kp, int kb) {
    rows = r;
    kPad = kp;
    kBlocks = kb;
    q.assign(size_t(r) * kp, 0);
    sa.assign(size_t(r) * kb, 0.f);
    sasum.assign(size_t(r) * kb, 0.f);
  }
};

void quantizeRow(const float* x, int k, int block, int kBlocks, int8_t* q, float* sa, float* sasum) {
  for (int b = 0; b < kBlocks; b++) {
    const int c0 = b * block, c1 = std::min(k, c0 + block);
    float amax = 0.f;
    for (int c = c0; c < c1; c++) amax = std::max(amax, std::fabs(x[c]));
    const float scale = amax / 127.f;
    const float inv = amax > 0.f ? 127.f / amax : 0.f;
    int sum = 0;
    for (int c = c0; c < c0 + block; c++) {
      int v = 0;
      if (c < c1) v = int(std::nearbyint(x[c] * inv));
      v = std::max(-127, std::min(127, v));
      q[c] = int8_t(v);
      sum += v;
    }
    sa[b] = scale;
    sasum[b] = scale * float(sum);
  }
}

// ---------------------------------------------------------------------------------------------
// Tile kernels: one tile (16 output columns) of L for `mt` rows of quantised activations.
// out[m * ldo + j] = Σ_b sa[m,b] · (s[b,j] · Σ_k q_w[k,j] q_x[m,k] − z[b,j] · s[b,j] · Σ_k q_x[m,k])

void tileScalar(const Linear& L, int t, const QuantRows& A, int m0, int mt, float* out, int ldo) {
  for (int m = 0; m < mt; m++) {
    float acc[TILE] = {0};
    const int8_t* a = A.q.data() + size_t(m0 + m) * A.kPad;
    for (int blk = 0; blk < L.kBlocks; blk++) {
      const size_t tb = size_t(t) * L.kBlocks + blk;
      const uint8_t* w = L.w + tb * L.chunks * CHUNK_BYTES;
      int32_t dot[TILE] = {0};
      for (int c = 0; c < L.chunks; c++) {
        const int8_t* ak = a + blk * L.block + c * CHUNK_K;
        for (int j = 0; j < TILE; j++)
          for (int i = 0; i < 4; i++) {
            const uint8_t v = w[c * CHUNK_BYTES + j * 4 + i];
            dot[j] += int32_t(v & 15) * ak[i] + int32_t(v >> 4) * ak[i + 4];
          }
      }
      const float sa = A.sa[size_t(m0 + m) * A.kBlocks + blk];
      const float sas = A.sasum[size_t(m0 + m) * A.kBlocks + blk];
      for (int j = 0; j < TILE; j++) {
        const float s = L.s[tb * TILE + j];
        acc[j] += float(dot[j]) * s * sa - float(L.z[tb * TILE + j]) * s * sas;
      }
    }
    for (int j = 0; j < TILE; j++) out[m * ldo + j] = acc[j];
  }
}

#ifdef POV_X86
__attribute__((target("avx512f"))) inline __m512i bcast(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// NA accumulators per row so that a few rows still give the core independent dependency chains
// (a batch-1 call would otherwise wait on one vpdpbusd after another).
template <int MT>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void tileVnniT(
    const Linear& L, int t, const QuantRows& A, int m0, float* out, int ldo) {
  constexpr int NA = MT == 1 ? 4 : (MT <= 4 ? 2 : 1);
  const __m512i low = _mm512_set1_epi8(0x0F);
  __m512 accf[MT];
  for (int m = 0; m < MT; m++) accf[m] = _mm512_setzero_ps();
  const int8_t* a[MT];
  for (int m = 0; m < MT; m++) a[m] = A.q.data() + size_t(m0 + m) * A.kPad;
  for (int blk = 0; blk < L.kBlocks; blk++) {
    const size_t tb = size_t(t) * L.kBlocks + blk;
    const uint8_t* w = L.w + tb * L.chunks * CHUNK_BYTES;
    __m512i acc[MT][NA];
    for (int m = 0; m < MT; m++)
      for (int u = 0; u < NA; u++) acc[m][u] = _mm512_setzero_si512();
    const int kb = blk * L.block;
    for (int c = 0; c < L.chunks; c += 2) {  // chunks per block is a power of 2, at least 2
      const __m512i v0 = _mm512_load_si512(reinterpret_cast<const void*>(w + c * CHUNK_BYTES));
      const __m512i v1 = _mm512_load_si512(reinterpret_cast<const void*>(w + (c + 1) * CHUNK_BYTES));
      const __m512i lo0 = _mm512_and_si512(v0, low);
      const __m512i hi0 = _mm512_and_si512(_mm512_srli_epi16(v0, 4), low);
      const __m512i lo1 = _mm512_and_si512(v1, low);
      const __m512i hi1 = _mm512_and_si512(_mm512_srli_epi16(v1, 4), low);
      // the tile's weights are one contiguous stream across its blocks: fetch ahead of the
      // hardware prefetcher, which alone left batch-1 calls waiting on memory
      _mm_prefetch(reinterpret_cast<const char*>(w + c * CHUNK_BYTES + PREFETCH_BYTES), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(w + (c + 1) * CHUNK_BYTES + PREFETCH_BYTES), _MM_HINT_T0);
      const int k0 = kb + c * CHUNK_K;
      for (int m = 0; m < MT; m++) {
        const int8_t* p = a[m] + k0;
        acc[m][0] = _mm512_dpbusd_epi32(acc[m][0], lo0, bcast(p));
        acc[m][1 % NA] = _mm512_dpbusd_epi32(acc[m][1 % NA], hi0, bcast(p + 4));
        acc[m][2 % NA] = _mm512_dpbusd_epi32(acc[m][2 % NA], lo1, bcast(p + 8));
        acc[m][3 % NA] = _mm512_dpbusd_epi32(acc[m][3 % NA], hi1, bcast(p + 12));
      }
    }
    const __m512 s = _mm512_load_ps(L.s + tb * TILE);
    const __m512 zs = _mm512_mul_ps(
        _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(L.z + tb * TILE)))), s);
    for (int m = 0; m < MT; m++) {
      __m512i sum = acc[m][0];
      for (int u = 1; u < NA; u++) sum = _mm512_add_epi32(sum, acc[m][u]);
      const size_t ab = size_t(m0 + m) * A.kBlocks + blk;
      const __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(sum), s);
      accf[m] = _mm512_fmadd_ps(f, _mm512_set1_ps(A.sa[ab]), accf[m]);
      accf[m] = _mm512_fnmadd_ps(zs, _mm512_set1_ps(A.sasum[ab]), accf[m]);
    }
  }
  for (int m = 0; m < MT; m++) _mm512_storeu_ps(out + m * ldo, accf[m]);
}

void tileVnni(const Linear& L, int t, const QuantRows& A, int m0, int mt, float* out, int ldo) {
  constexpr int MAX = 8;  // 12 spilled registers (measured no faster)
  while (mt > 0) {
    const int now = std::min(mt, MAX);
    switch (now) {
      case 1: tileVnniT<1>(L, t, A, m0, out, ldo); break;
      case 2: tileVnniT<2>(L, t, A, m0, out, ldo); break;
      case 3: tileVnniT<3>(L, t, A, m0, out, ldo); break;
      case 4: tileVnniT<4>(L, t, A, m0, out, ldo); break;
      case 5: tileVnniT<5>(L, t, A, m0, out, ldo); break;
      case 6: tileVnniT<6>(L, t, A, m0, out, ldo); break;
      case 7: tileVnniT<7>(L, t, A, m0, out, ldo); break;
      default: tileVnniT<8>(L, t, A, m0, out, ldo); break;
    }
    m0 += now;
    mt -= now;
    out += size_t(now) * ldo;
  }
}

// AVX2: lanes 0–7 and 8–15 of a tile in two ymm; u8 × s8 pairs summed to i16 (maddubs: at most
// 2 · 15 · 127, no saturation), then to i32 (madd with ones).
template <int MT>
__attribute__((target("avx2,fma"))) void tileAvx2T(
    const Linear& L, int t, const QuantRows& A, int m0, float* out, int ldo) {
  const __m256i low = _mm256_set1_epi8(0x0F);
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 accf[MT][2];
  for (int m = 0; m < MT; m++) accf[m][0] = accf[m][1] = _mm256_setzero_ps();
  const int8_t* a[MT];
  for (int m = 0; m < MT; m++) a[m] = A.q.data() + size_t(m0 + m) * A.kPad;
  for (int blk = 0; blk < L.kBlocks; blk++) {
    const size_t tb = size_t(t) * L.kBlocks + blk;
    const uint8_t* w = L.w + tb * L.chunks * CHUNK_BYTES;
    __m256i acc[MT][2];
    for (int m = 0; m < MT; m++) acc[m][0] = acc[m][1] = _mm256_setzero_si256();
    const int kb = blk * L.block;
    for (int c = 0; c < L.chunks; c++) {
      const int k0 = kb + c * CHUNK_K;
      for (int h = 0; h < 2; h++) {
        const __m256i v = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + c * CHUNK_BYTES + h * 32));
        const __m256i lo = _mm256_and_si256(v, low);
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
        for (int m = 0; m < MT; m++) {
          int32_t x0, x1;
          std::memcpy(&x0, a[m] + k0, 4);
          std::memcpy(&x1, a[m] + k0 + 4, 4);
          const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, _mm256_set1_epi32(x0)),
                                             _mm256_maddubs_epi16(hi, _mm256_set1_epi32(x1)));
          acc[m][h] = _mm256_add_epi32(acc[m][h], _mm256_madd_epi16(p, ones));
        }
      }
    }
    for (int h = 0; h < 2; h++) {
      const __m256 s = _mm256_load_ps(L.s + tb * TILE + h * 8);
      __m128i zb;
      std::memcpy(&zb, L.z + tb * TILE + h * 8, 8);
      const __m256 zs = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(zb)), s);
      for (int m = 0; m < MT; m++) {
        const size_t ab = size_t(m0 + m) * A.kBlocks + blk;
        const __m256 f = _mm256_mul_ps(_mm256_cvtepi32_ps(acc[m][h]), s);
        accf[m][h] = _mm256_fmadd_ps(f, _mm256_set1_ps(A.sa[ab]), accf[m][h]);
        accf[m][h] = _mm256_fnmadd_ps(zs, _mm256_set1_ps(A.sasum[ab]), accf[m][h]);
      }
    }
  }
  for (int m = 0; m < MT; m++) {
    _mm256_storeu_ps(out + m * ldo, accf[m][0]);
    _mm256_storeu_ps(out + m * ldo + 8, accf[m][1]);
  }
}

void tileAvx2(const Linear& L, int t, const QuantRows& A, int m0, int mt, float* out, int ldo) {
  while (mt > 0) {
    const int now = std::min(mt, 4);
    switch (now) {
      case 1: tileAvx2T<1>(L, t, A, m0, out, ldo); break;
      case 2: tileAvx2T<2>(L, t, A, m0, out, ldo); break;
      case 3: tileAvx2T<3>(L, t, A, m0, out, ldo); break;
      default: tileAvx2T<4>(L, t, A, m0, out, ldo); break;
    }
    m0 += now;
    mt -= now;
    out += size_t(now) * ldo;
  }
}
#endif

// The elementwise parts, scalar (the reference) and AVX-512: at batch 64 the scalar exp of the
// gate and the scalar quantisation took about a third of a run's CPU time.

inline float silu(float v) { return v / (1.f + std::exp(-v)); }

using QuantFn = void (*)(const float*, int, int, int, int8_t*, float*, float*);
/** g[m, j] = silu(h1[m, j]) · h3[m, j] for j < cols, h1 and h3 [rows][TILE]. */
using GateFn = void (*)(const float*, const float*, int, int, float*, int);

void gateScalar(const float* h1, const float* h3, int rows, int cols, float* g, int ldg) {
  for (int m = 0; m < rows; m++)
    for (int j = 0; j < cols; j++) g[size_t(m) * ldg + j] = silu(h1[m * TILE + j]) * h3[m * TILE + j];
}

#ifdef POV_X86
// e^x: 2^(x log2 e) split into 2^n (vscalefps) and 2^f, |f| ≤ 1/2, by its degree-6 Taylor
// polynomial (relative error ~1e-7, float's own precision).
__attribute__((target("avx512f"))) inline __m512 exp512(__m512 x) {
  x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.5f)), _mm512_set1_ps(-87.0f));
  const __m512 t = _mm512_mul_ps(x, _mm512_set1_ps(1.44269504089f));
  const __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(t, n);
  __m512 p = _mm512_set1_ps(1.540353e-4f);
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.3333558e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.6181291e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.55041087e-2f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.240226507f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.693147181f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

__attribute__((target("avx512f"))) void gateAvx512(const float* h1, const float* h3, int rows, int cols,
                                                   float* g, int ldg) {
  const __mmask16 mask = cols >= TILE ? __mmask16(0xFFFF) : __mmask16((1u << cols) - 1);
  const __m512 one = _mm512_set1_ps(1.f);
  for (int m = 0; m < rows; m++) {
    const __m512 a = _mm512_loadu_ps(h1 + m * TILE);
    const __m512 b = _mm512_loadu_ps(h3 + m * TILE);
    const __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), a));
    const __m512 v = _mm512_mul_ps(_mm512_div_ps(a, _mm512_add_ps(one, e)), b);
    _mm512_mask_storeu_ps(g + size_t(m) * ldg, mask, v);
  }
}

// quantizeRow with 16 lanes; the same rounding (to nearest even, the default mode) and results.
__attribute__((target("avx512f,avx512bw"))) void quantizeRowAvx512(const float* x, int k, int block,
                                                                  int kBlocks, int8_t* q, float* sa,
                                                                  float* sasum) {
  for (int b = 0; b < kBlocks; b++) {
    const int c0 = b * block;
    const int n = std::min(k - c0, block);
    const auto maskAt = [n](int i) {
      const int left = n - i;
      return left >= 16 ? __mmask16(0xFFFF) : left <= 0 ? __mmask16(0) : __mmask16((1u << left) - 1);
    };
    __m512 mx = _mm512_setzero_ps();
    for (int i = 0; i < block; i += 16)
      mx = _mm512_max_ps(mx, _mm512_abs_ps(_mm512_maskz_loadu_ps(maskAt(i), x + c0 + i)));
    const float amax = _mm512_reduce_max_ps(mx);
    const __m512 inv = _mm512_set1_ps(amax > 0.f ? 127.f / amax : 0.f);
    const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127);
    __m512i sum = _mm512_setzero_si512();
    for (int i = 0; i < block; i += 16) {
      const __m512 v = _mm512_maskz_loadu_ps(maskAt(i), x + c0 + i);
      __m512i r = _mm512_cvtps_epi32(_mm512_mul_ps(v, inv));
      r = _mm512_min_epi32(_mm512_max_epi32(r, lo), hi);
      sum = _mm512_add_epi32(sum, r);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + c0 + i), _mm512_cvtepi32_epi8(r));
    }
    sa[b] = amax / 127.f;
    sasum[b] = sa[b] * float(_mm512_reduce_add_epi32(sum));
  }
}
#endif

using TileFn = void (*)(const Linear&, int, const QuantRows&, int, int, float*, int);

struct Isa {
  const char* name;
  TileFn tile;
  QuantFn quantize;
  GateFn gate;
};

// `want`: "" (the best this CPU has), or a path to prefer (tests compare the paths on one machine).
Isa detectIsa(const std::string& f) {
#ifdef POV_X86
  __builtin_cpu_init();
  const bool vnni = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                    __builtin_cpu_supports("avx512vnni");
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if ((f.empty() || f == "avx512vnni") && vnni)
    return {"avx512vnni", tileVnni, quantizeRowAvx512, gateAvx512};
  if ((f.empty() || f == "avx2" || f == "avx512vnni") && avx2)
    return {"avx2", tileAvx2, quantizeRow, gateScalar};
#endif
  return {"portable", tileScalar, quantizeRow, gateScalar};
}

Isa isa{nullptr, nullptr, nullptr, nullptr};

const Isa& getIsa() {
  if (isa.tile == nullptr) {
    const char* env = std::getenv("POV_INT4_ISA");
    isa = detectIsa(env != nullptr ? env : "");
  }
  return isa;
}

// ---------------------------------------------------------------------------------------------
// The expert: three products on the pool.

/** Tiles per chunk: ~8 chunks per thread, so a late or slow thread's share is taken by others. */
inline int tileGrain(int tiles, int threads) { return std::max(1, tiles / (8 * threads)); }

void runExpert(const Expert& e, const float* x, int rows, float* y) {
  const TileFn tile = getIsa().tile;
  const QuantFn quantize = getIsa().quantize;
  const GateFn gate = getIsa().gate;
  Pool& p = getPool();
  QuantRows ax, ag;
  ax.resize(rows, e.w1.kPad(), e.w1.kBlocks);
  ag.resize(rows, e.w2.kPad(), e.w2.kBlocks);
  std::vector<float> g(size_t(rows) * e.w2.kPad(), 0.f);
  const int ldg = e.w2.kPad();
  // workers poll between the phases of runs of 8 rows and more, whose phases are long enough that
  // a worker woken late idles a core for a large part of one; a few rows' phases are short, and
  // polling there only took cores from other threads (both measured on a shared 2-core machine)
  // 1. quantise x
  p.parallelFor(rows, 4, [&](int a, int b) {
    for (int m = a; m < b; m++)
      quantize(x + size_t(m) * e.hidden, e.hidden, e.w1.block, e.w1.kBlocks,
                  ax.q.data() + size_t(m) * ax.kPad, ax.sa.data() + size_t(m) * ax.kBlocks,
                  ax.sasum.data() + size_t(m) * ax.kBlocks);
  });
  // 2. g = silu(w1 x) * w3 x over tiles of inter
  p.parallelFor(e.w1.tiles, tileGrain(e.w1.tiles, p.threads()), [&](int a, int b) {
    std::vector<float> h1(size_t(rows) * TILE), h3(size_t(rows) * TILE);
    for (int t = a; t < b; t++) {
      tile(e.w1, t, ax, 0, rows, h1.data(), TILE);
      tile(e.w3, t, ax, 0, rows, h3.data(), TILE);
      gate(h1.data(), h3.data(), rows, std::min(TILE, e.inter - t * TILE), g.data() + t * TILE, ldg);
    }
  });
  // 3. quantise g
  p.parallelFor(rows, 4, [&](int a, int b) {
    for (int m = a; m < b; m++)
      quantize(g.data() + size_t(m) * ldg, e.inter, e.w2.block, e.w2.kBlocks,
                  ag.q.data() + size_t(m) * ag.kPad, ag.sa.data() + size_t(m) * ag.kBlocks,
                  ag.sasum.data() + size_t(m) * ag.kBlocks);
  });
  // 4. y = w2 g
  p.parallelFor(e.w2.tiles, tileGrain(e.w2.tiles, p.threads()), [&](int a, int b) {
    std::vector<float> o(size_t(rows) * TILE);
    for (int t = a; t < b; t++) {
      tile(e.w2, t, ag, 0, rows, o.data(), TILE);
      const int cols = std::min(TILE, e.hidden - t * TILE);
      for (int m = 0; m < rows; m++)
        std::memcpy(y + size_t(m) * e.hidden + t * TILE, o.data() + m * TILE, cols * sizeof(float));
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Loading: map the data file, check every section lies inside it with the length its shape needs,
// repack into one anonymous mapping (huge pages where the kernel gives them), unmap, drop the
// file's cached pages.

std::string checkSource(const char* name, const Source& s, size_t fileBytes) {
  char buf[512];
  if (s.n <= 0 || s.k <= 0 || s.block < 16 || (s.block & (s.block - 1)) != 0 || s.block % CHUNK_K != 0) {
    std::snprintf(buf, sizeof buf, "%s: bad shape n=%d k=%d block=%d", name, s.n, s.k, s.block);
    return buf;
  }
  const size_t kBlocks = (size_t(s.k) + s.block - 1) / s.block;
  const size_t wantB = size_t(s.n) * kBlocks * (s.block / 2);
  const size_t wantS = size_t(s.n) * kBlocks * 4;
  const size_t wantZ = size_t(s.n) * ((kBlocks + 1) / 2);
  if (s.bLen != wantB || s.sLen != wantS || s.zLen != wantZ) {
    std::snprintf(buf, sizeof buf,
                  "%s: [%d, %d] in blocks of %d needs %zu weight, %zu scale and %zu zero-point bytes; the graph says %zu, %zu, %zu",
                  name, s.n, s.k, s.block, wantB, wantS, wantZ, s.bLen, s.sLen, s.zLen);
    return buf;
  }
  const size_t ends[3] = {s.bOff + s.bLen, s.sOff + s.sLen, s.zOff + s.zLen};
  for (size_t end : ends)
    if (end > fileBytes) {
      std::snprintf(buf, sizeof buf, "%s: a section ends at byte %zu, past the end of the %zu-byte data file", name, end, fileBytes);
      return buf;
    }
  if (s.sOff % 4 != 0) {
    std::snprintf(buf, sizeof buf, "%s: scales at offset %zu are not 4-byte aligned", name, s.sOff);
    return buf;
  }
  return "";
}

void layOut(Linear& L, const Source& s) {
  L.n = s.n;
  L.k = s.k;
  L.block = s.block;
  L.kBlocks = (s.k + s.block - 1) / s.block;
  L.tiles = (s.n + TILE - 1) / TILE;
  L.chunks = s.block / CHUNK_K;
}

std::string loadExpert(const std::string& path, const Source src[3], Expert** out) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return path + ": cannot open: " + std::strerror(errno);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const std::string err = path + ": cannot stat: " + std::strerror(errno);
    close(fd);
    return err;
  }
  const size_t fileBytes = size_t(st.st_size);
  const char* names[3] = {"w1", "w3", "w2"};
  for (int i = 0; i < 3; i++) {
    const std::string err = checkSource(names[i], src[i], fileBytes);
    if (!err.empty()) {
      close(fd);
      return path + ": " + err;
    }
  }
  auto* e = new Expert();
  Linear* Ls[3] = {&e->w1, &e->w3, &e->w2};
  size_t total = 0;
  for (int i = 0; i < 3; i++) {
    layOut(*Ls[i], src[i]);
    total += align64(Ls[i]->wBytes()) + align64(Ls[i]->sBytes()) + align64(Ls[i]->zBytes());
  }
  e->hidden = src[0].k;
  e->inter = src[0].n;
  if (src[1].n != e->inter || src[1].k != e->hidden || src[2].n != e->hidden || src[2].k != e->inter) {
    delete e;
    close(fd);
    return path + ": w1 [" + std::to_string(src[0].n) + ", " + std::to_string(src[0].k) + "], w3 [" +
           std::to_string(src[1].n) + ", " + std::to_string(src[1].k) + "] and w2 [" +
           std::to_string(src[2].n) + ", " + std::to_string(src[2].k) +
           "] are not the shapes of one expert (w1, w3 [inter, hidden]; w2 [hidden, inter])";
  }
  void* mem = mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    delete e;
    close(fd);
    return path + ": cannot allocate " + std::to_string(total) + " bytes: " + std::strerror(errno);
  }
#ifdef MADV_HUGEPAGE
  madvise(mem, total, MADV_HUGEPAGE);  // fewer TLB misses while streaming the weights
#endif
  e->mem = mem;
  e->memBytes = total;
  auto* cur = static_cast<uint8_t*>(mem);
  for (int i = 0; i < 3; i++) {
    Ls[i]->w = cur;
    cur += align64(Ls[i]->wBytes());
    Ls[i]->s = reinterpret_cast<float*>(cur);
    cur += align64(Ls[i]->sBytes());
    Ls[i]->z = cur;
    cur += align64(Ls[i]->zBytes());
  }
  void* file = mmap(nullptr, fileBytes, PROT_READ, MAP_PRIVATE, fd, 0);
  if (file == MAP_FAILED) {
    const std::string err = path + ": cannot map: " + std::strerror(errno);
    releaseExpert(e);
    close(fd);
    return err;
  }
  madvise(file, fileBytes, MADV_SEQUENTIAL);
  const auto* base = static_cast<const uint8_t*>(file);
  Pool& p = getPool();
  for (int i = 0; i < 3; i++) {
    const Linear& L = *Ls[i];
    const Source& s = src[i];
    p.parallelFor(L.tiles, tileGrain(L.tiles, p.threads()), [&](int a, int b) {
      repack(L, base + s.bOff, reinterpret_cast<const float*>(base + s.sOff), base + s.zOff, a, b);
    });
  }
  munmap(file, fileBytes);
  posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);  // the repacked copy is the only one kept
  close(fd);
  *out = e;
  return "";
}

// ---------------------------------------------------------------------------------------------
// Node-API glue

#define CHECK(env, call)                                         \
  do {                                                           \
    if ((call) != napi_ok) {                                     \
      napi_throw_error((env), nullptr, "pov int4 kernel: N-API call failed: " #call); \
      return nullptr;                                            \
    }                                                            \
  } while (0)

napi_value throwType(napi_env env, const std::string& msg) {
  napi_throw_type_error(env, nullptr, msg.c_str());
  return nullptr;
}

bool getNumber(napi_env env, napi_value obj, const char* key, double* out) {
  napi_value v;
  napi_valuetype t;
  if (napi_get_named_property(env, obj, key, &v) != napi_ok) return false;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) return false;
  return napi_get_value_double(env, v, out) == napi_ok;
}

bool toSize(double d, size_t* out) {
  if (!(d >= 0) || d > 9007199254740991.0 || std::floor(d) != d) return false;
  *out = size_t(d);
  return true;
}

void finalizeExpert(napi_env, void* data, void*) { unref(static_cast<Expert*>(data)); }

Expert* getExpert(napi_env env, napi_value v) {
  void* data = nullptr;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external) return nullptr;
  if (napi_get_value_external(env, v, &data) != napi_ok) return nullptr;
  return static_cast<Expert*>(data);
}

struct LoadJob {
  napi_async_work work = nullptr;
  napi_deferred deferred = nullptr;
  std::string path;
  Source src[3];
  Expert* expert = nullptr;
  std::string error;
};

// load(path, [w1, w3, w2]) → Promise<handle>; each source {n, k, block, bOffset, bLength,
// sOffset, sLength, zOffset, zLength}
napi_value Load(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc < 2) return throwType(env, "load(path, sources) needs 2 arguments");
  size_t len = 0;
  if (napi_get_value_string_utf8(env, argv[0], nullptr, 0, &len) != napi_ok)
    return throwType(env, "load: path must be a string");
  std::string path(len, '\0');
  CHECK(env, napi_get_value_string_utf8(env, argv[0], path.data(), len + 1, &len));
  bool isArray = false;
  uint32_t n = 0;
  if (napi_is_array(env, argv[1], &isArray) != napi_ok || !isArray ||
      napi_get_array_length(env, argv[1], &n) != napi_ok || n != 3)
    return throwType(env, "load: sources must be an array of 3 (w1, w3, w2)");
  auto* job = new LoadJob();
  job->path = path;
  for (uint32_t i = 0; i < 3; i++) {
    napi_value o;
    CHECK(env, napi_get_element(env, argv[1], i, &o));
    double d[9];
    const char* keys[9] = {"n", "k", "block", "bOffset", "bLength", "sOffset", "sLength", "zOffset", "zLength"};
    size_t sz[9];
    for (int j = 0; j < 9; j++)
      if (!getNumber(env, o, keys[j], &d[j]) || !toSize(d[j], &sz[j]) || (j < 3 && sz[j] > 1u << 30)) {
        delete job;
        return throwType(env, std::string("load: source ") + std::to_string(i) + " needs a non-negative integer " + keys[j]);
      }
    job->src[i] = Source{int(sz[0]), int(sz[1]), int(sz[2]), sz[3], sz[4], sz[5], sz[6], sz[7], sz[8]};
  }
  napi_value promise, name;
  CHECK(env, napi_create_promise(env, &job->deferred, &promise));
  CHECK(env, napi_create_string_utf8(env, "pov-int4-load", NAPI_AUTO_LENGTH, &name));
  CHECK(env, napi_create_async_work(
                 env, nullptr, name,
                 [](napi_env, void* data) {
                   auto* j = static_cast<LoadJob*>(data);
                   std::lock_guard<std::mutex> g(jobMutex);
                   try {
                     j->error = loadExpert(j->path, j->src, &j->expert);
                   } catch (const std::exception& ex) {
                     j->error = j->path + ": int4 expert load failed: " + ex.what();
                   }
                 },
                 [](napi_env env, napi_status, void* data) {
                   auto* j = static_cast<LoadJob*>(data);
                   if (j->error.empty()) {
                     napi_value ext;
                     napi_create_external(env, j->expert, finalizeExpert, nullptr, &ext);
                     napi_resolve_deferred(env, j->deferred, ext);
                   } else {
                     napi_value msg, err;
                     napi_create_string_utf8(env, j->error.c_str(), NAPI_AUTO_LENGTH, &msg);
                     napi_create_error(env, nullptr, msg, &err);
                     napi_reject_deferred(env, j->deferred, err);
                   }
                   napi_delete_async_work(env, j->work);
                   delete j;
                 },
                 job, &job->work));
  CHECK(env, napi_queue_async_work(env, job->work));
  return promise;
}

struct RunJob {
  napi_async_work work = nullptr;
  napi_deferred deferred = nullptr;
  napi_ref xRef = nullptr, yRef = nullptr;
  Expert* expert = nullptr;
  const float* x = nullptr;
  float* y = nullptr;
  int rows = 0;
  std::string error;
};

bool getFloat32(napi_env env, napi_value v, float** data, size_t* length) {
  bool is = false;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return false;
  napi_typedarray_type type;
  void* p = nullptr;
  napi_value ab;
  size_t off = 0;
  if (napi_get_typedarray_info(env, v, &type, length, &p, &ab, &off) != napi_ok) return false;
  if (type != napi_float32_array) return false;
  *data = static_cast<float*>(p);
  return true;
}

// run(handle, x: Float32Array, rows, y: Float32Array) → Promise<y>
napi_value Run(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  if (argc < 4) return throwType(env, "run(handle, x, rows, y) needs 4 arguments");
  Expert* e = getExpert(env, argv[0]);
  if (e == nullptr) return throwType(env, "run: the first argument is not an expert handle");
  if (e->freed) return throwType(env, "run: this expert was freed");
  float *x = nullptr, *y = nullptr;
  size_t xl = 0, yl = 0;
  if (!getFloat32(env, argv[1], &x, &xl)) return throwType(env, "run: x must be a Float32Array");
  if (!getFloat32(env, argv[3], &y, &yl)) return throwType(env, "run: y must be a Float32Array");
  double rd = 0;
  napi_valuetype t;
  if (napi_typeof(env, argv[2], &t) != napi_ok || t != napi_number ||
      napi_get_value_double(env, argv[2], &rd) != napi_ok || !(rd >= 1) || rd > 1e6 || std::floor(rd) != rd)
    return throwType(env, "run: rows must be an integer from 1 to 1000000");
  const size_t rows = size_t(rd);
  if (xl != rows * e->hidden || yl != rows * e->hidden)
    return throwType(env, "run: x and y must hold rows × hidden = " + std::to_string(rows) + " × " +
                              std::to_string(e->hidden) + " values; got " + std::to_string(xl) +
                              " and " + std::to_string(yl));
  auto* job = new RunJob();
  job->expert = e;
  job->x = x;
  job->y = y;
  job->rows = int(rows);
  e->refs++;
  napi_value promise, name;
  CHECK(env, napi_create_reference(env, argv[1], 1, &job->xRef));
  CHECK(env, napi_create_reference(env, argv[3], 1, &job->yRef));
  CHECK(env, napi_create_promise(env, &job->deferred, &promise));
  CHECK(env, napi_create_string_utf8(env, "pov-int4-run", NAPI_AUTO_LENGTH, &name));
  CHECK(env, napi_create_async_work(
                 env, nullptr, name,
                 [](napi_env, void* data) {
                   auto* j = static_cast<RunJob*>(data);
                   std::lock_guard<std::mutex> g(jobMutex);
                   try {
                     runExpert(*j->expert, j->x, j->rows, j->y);
                   } catch (const std::exception& ex) {
                     j->error = std::string("int4 expert run failed: ") + ex.what();
                   }
                 },
                 [](napi_env env, napi_status, void* data) {
                   auto* j = static_cast<RunJob*>(data);
                   if (j->error.empty()) {
                     napi_value y;
                     napi_get_reference_value(env, j->yRef, &y);
                     napi_resolve_deferred(env, j->deferred, y);
                   } else {
                     napi_value msg, err;
                     napi_create_string_utf8(env, j->error.c_str(), NAPI_AUTO_LENGTH, &msg);
                     napi_create_error(env, nullptr, msg, &err);
                     napi_reject_deferred(env, j->deferred, err);
                   }
                   napi_delete_reference(env, j->xRef);
                   napi_delete_reference(env, j->yRef);
                   unref(j->expert);
                   napi_delete_async_work(env, j->work);
                   delete j;
                 },
                 job, &job->work));
  CHECK(env, napi_queue_async_work(env, job->work));
  return promise;
}

// free(handle): releases the weights now (after the runs in flight) instead of at GC.
napi_value Free(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  Expert* e = argc >= 1 ? getExpert(env, argv[0]) : nullptr;
  if (e == nullptr) return throwType(env, "free: the argument is not an expert handle");
  if (!e->freed) {
    e->freed = true;
    // the handle's own reference goes when the external is collected (finalizeExpert); here we
    // only drop the weights, which no run can use any more
    if (e->refs == 1 && e->mem != nullptr) {
      munmap(e->mem, e->memBytes);
      e->mem = nullptr;
    }
  }
  return nullptr;
}

// info() → { isa, threads, residentBytes? }; setThreads(n)
napi_value Info(napi_env env, napi_callback_info) {
  napi_value o, isaName, threads;
  CHECK(env, napi_create_object(env, &o));
  CHECK(env, napi_create_string_utf8(env, getIsa().name, NAPI_AUTO_LENGTH, &isaName));
  const int n = wantThreads > 0 ? wantThreads : int(std::max(1u, std::thread::hardware_concurrency()));
  CHECK(env, napi_create_int32(env, n, &threads));
  CHECK(env, napi_set_named_property(env, o, "isa", isaName));
  CHECK(env, napi_set_named_property(env, o, "threads", threads));
  return o;
}

napi_value SetThreads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  int32_t n = 0;
  if (argc < 1 || napi_get_value_int32(env, argv[0], &n) != napi_ok || n < 0 || n > 1024)
    return throwType(env, "setThreads(n): n must be an integer from 0 (all cores) to 1024");
  std::lock_guard<std::mutex> g(jobMutex);
  wantThreads = n;
  return nullptr;
}

// useIsa(name): "" for the best path, or avx512vnni | avx2 | portable; returns the path now in use
// (a lesser one where the CPU lacks the asked one).
napi_value UseIsa(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  char buf[32] = {0};
  size_t len = 0;
  if (argc < 1 || napi_get_value_string_utf8(env, argv[0], buf, sizeof buf, &len) != napi_ok)
    return throwType(env, "useIsa(name): name must be a string");
  const std::string want(buf, len);
  if (!want.empty() && want != "avx512vnni" && want != "avx2" && want != "portable")
    return throwType(env, "useIsa: unknown path \"" + want + "\" (avx512vnni, avx2, portable)");
  std::lock_guard<std::mutex> g(jobMutex);
  isa = detectIsa(want);
  napi_value out;
  CHECK(env, napi_create_string_utf8(env, isa.name, NAPI_AUTO_LENGTH, &out));
  return out;
}

napi_value Init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"load", nullptr, Load, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"run", nullptr, Run, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"free", nullptr, Free, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"info", nullptr, Info, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"setThreads", nullptr, SetThreads, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"useIsa", nullptr, UseIsa, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return nullptr;
  return exports;
}

}  // namespace

NAPI_MODULE_INIT() { return Init(env, exports); }
