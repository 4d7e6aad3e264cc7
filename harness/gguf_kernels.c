/* Matrix products with weights kept in the GGUF file's own blocks (ggml's block_q4_1 and block_q8_0),
 * for the embedded model's few-token forward passes (harness/gguf_kernels.py builds and loads this).
 *
 * y[i, r] = sum_k x[i, k] * W[r, k]   for i < n rows of x, r < N rows of W (K columns, K % 32 == 0)
 *
 * Each row of W is K/32 blocks:
 *   block_q4_1 (20 bytes): float16 d, float16 m, 16 bytes of 4-bit q; element j < 16 is the low
 *                          nibble of byte j, element j + 16 its high nibble; W = d * q + m
 *   block_q8_0 (34 bytes): float16 d, 32 signed bytes q; W = d * q
 * These are the values that gguf's dequantize (and transformers' GGUF loader) give, so the model is
 * the one in the file; only the order of the float32 additions differs from a dense matmul.
 * x and y are float32, row-major and contiguous. Needs AVX2, FMA and F16C. */
#include <immintrin.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define Q4_1_BYTES 20
#define Q8_0_BYTES 34
#define ROWS_AT_ONCE 16 /* rows of x sharing one pass over W */

static inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float half(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* the 8 unsigned (u) or signed (s) bytes at the bottom of b as floats */
static inline __m256 floats_u8(__m128i b) { return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b)); }
static inline __m256 floats_s8(__m128i b) { return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b)); }

/* q of one block_q4_1 as four vectors of 8 floats, in element order */
static inline void q4_floats(const uint8_t *block, __m256 q[4]) {
    const __m128i low = _mm_set1_epi8(0x0F);
    __m128i bytes = _mm_loadu_si128((const __m128i *)(block + 4));
    __m128i lo = _mm_and_si128(bytes, low), hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), low);
    q[0] = floats_u8(lo);
    q[1] = floats_u8(_mm_srli_si128(lo, 8));
    q[2] = floats_u8(hi);
    q[3] = floats_u8(_mm_srli_si128(hi, 8));
}

static inline void q8_floats(const uint8_t *block, __m256 q[4]) {
    for (int j = 0; j < 4; j++) q[j] = floats_s8(_mm_loadl_epi64((const __m128i *)(block + 2 + 8 * j)));
}

/* q . x for one block, as 8 partial sums (two independent chains) */
static inline __m256 dot32(const __m256 q[4], const float *x) {
    __m256 t0 = _mm256_fmadd_ps(q[2], _mm256_loadu_ps(x + 16), _mm256_mul_ps(q[0], _mm256_loadu_ps(x)));
    __m256 t1 = _mm256_fmadd_ps(q[3], _mm256_loadu_ps(x + 24), _mm256_mul_ps(q[1], _mm256_loadu_ps(x + 8)));
    return _mm256_add_ps(t0, t1);
}

/* one row of x (n == 1): sum_b d_b * (q_b . x_b) + m_b * sum(x_b), two accumulators in turn */
static void q4_1_vector(const float *x, int64_t K, const uint8_t *w, int64_t N, float *y) {
    const int64_t blocks = K / 32;
    float block_sums[blocks];
    for (int64_t b = 0; b < blocks; b++) {
        __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_loadu_ps(x + 32 * b), _mm256_loadu_ps(x + 32 * b + 8)),
                                 _mm256_add_ps(_mm256_loadu_ps(x + 32 * b + 16), _mm256_loadu_ps(x + 32 * b + 24)));
        block_sums[b] = hsum(s);
    }
    for (int64_t r = 0; r < N; r++) {
        const uint8_t *row = w + r * blocks * Q4_1_BYTES;
        __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
        float offsets = 0.0f;
        for (int64_t b = 0; b < blocks; b++) {
            const uint8_t *block = row + b * Q4_1_BYTES;
            __m256 q[4];
            q4_floats(block, q);
            acc[b & 1] = _mm256_fmadd_ps(dot32(q, x + 32 * b), _mm256_set1_ps(half(block)), acc[b & 1]);
            offsets += half(block + 2) * block_sums[b];
        }
        y[r] = hsum(_mm256_add_ps(acc[0], acc[1])) + offsets;
    }
}

static void q8_0_vector(const float *x, int64_t K, const uint8_t *w, int64_t N, float *y) {
    const int64_t blocks = K / 32;
    for (int64_t r = 0; r < N; r++) {
        const uint8_t *row = w + r * blocks * Q8_0_BYTES;
        __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
        for (int64_t b = 0; b < blocks; b++) {
            const uint8_t *block = row + b * Q8_0_BYTES;
            __m256 q[4];
            q8_floats(block, q);
            acc[b & 1] = _mm256_fmadd_ps(dot32(q, x + 32 * b), _mm256_set1_ps(half(block)), acc[b & 1]);
        }
        y[r] = hsum(_mm256_add_ps(acc[0], acc[1]));
    }
}

/* several rows of x: each block of W is turned into floats once, then used for up to ROWS_AT_ONCE rows */
static void blocks_matrix(const float *x, int64_t n, int64_t K, const uint8_t *w, int64_t N, float *y, int q4) {
    const int64_t blocks = K / 32, row_bytes = blocks * (q4 ? Q4_1_BYTES : Q8_0_BYTES);
    __m256 acc[ROWS_AT_ONCE];
    for (int64_t r = 0; r < N; r++) {
        const uint8_t *row = w + r * row_bytes;
        for (int64_t first = 0; first < n; first += ROWS_AT_ONCE) {
            const int64_t rows = n - first < ROWS_AT_ONCE ? n - first : ROWS_AT_ONCE;
            for (int64_t i = 0; i < rows; i++) acc[i] = _mm256_setzero_ps();
            for (int64_t b = 0; b < blocks; b++) {
                const uint8_t *block = row + b * (q4 ? Q4_1_BYTES : Q8_0_BYTES);
                __m256 q[4], d = _mm256_set1_ps(half(block));
                if (q4) {
                    __m256 m = _mm256_set1_ps(half(block + 2));
                    q4_floats(block, q);
                    for (int j = 0; j < 4; j++) q[j] = _mm256_add_ps(_mm256_mul_ps(q[j], d), m);
                } else {
                    q8_floats(block, q);
                    for (int j = 0; j < 4; j++) q[j] = _mm256_mul_ps(q[j], d);
                }
                for (int64_t i = 0; i < rows; i++) {
                    const float *xb = x + (first + i) * K + 32 * b;
                    __m256 a = acc[i];
                    for (int j = 0; j < 4; j++) a = _mm256_fmadd_ps(q[j], _mm256_loadu_ps(xb + 8 * j), a);
                    acc[i] = a;
                }
            }
            for (int64_t i = 0; i < rows; i++) y[(first + i) * N + r] = hsum(acc[i]);
        }
    }
}

void q4_1_matmul(const float *x, int64_t n, int64_t K, const uint8_t *w, int64_t N, float *y) {
    if (n == 1)
        q4_1_vector(x, K, w, N, y);
    else
        blocks_matrix(x, n, K, w, N, y, 1);
}

void q8_0_matmul(const float *x, int64_t n, int64_t K, const uint8_t *w, int64_t N, float *y) {
    if (n == 1)
        q8_0_vector(x, K, w, N, y);
    else
        blocks_matrix(x, n, K, w, N, y, 0);
}

/* ---- one token through the whole Llama decoder (the embedded model's decoding step) ---------- */

/* e^x for 8 floats (Cephes' expf: range reduction by ln 2, degree-5 polynomial; relative error ~1e-7) */
static inline __m256 exp8(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

static void matmul(int kind, const float *x, int64_t K, const uint8_t *w, int64_t N, float *y) {
    if (kind == 1)
        q4_1_vector(x, K, w, N, y);
    else
        q8_0_vector(x, K, w, N, y);
}

/* out = x / sqrt(mean(x^2) + eps) * weight (n % 8 == 0) */
static void rms_norm(const float *x, const float *weight, int64_t n, float eps, float *out) {
    __m256 s = _mm256_setzero_ps();
    for (int64_t i = 0; i < n; i += 8) s = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(x + i), s);
    __m256 scale = _mm256_set1_ps(1.0f / sqrtf(hsum(s) / (float)n + eps));
    for (int64_t i = 0; i < n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), scale), _mm256_loadu_ps(weight + i)));
}

struct llama {
    int64_t layers, hidden, inter, heads, kv_heads, head_dim, capacity;
    float eps, attention_scale;
    const float *embed;       /* [vocab, hidden] */
    const float *rope;        /* [position, head_dim / 2, 2]: cos, sin */
    const float *const *norms; /* per layer: attention norm, MLP norm; then the final norm */
    const uint8_t *const *matrices; /* per layer: qkv, out, gate_up, down; then the head */
    const int *kinds;         /* 1 = Q4_1, 0 = Q8_0, per matrix */
    int64_t vocab;
};

/* Writes the keys and values of ``position`` into the caches (keys [layer, kv head, dim, capacity],
 * values [layer, kv head, capacity, dim]) and the logits after ``token``. q and k rows come in
 * rotary pairs (dims 2i, 2i + 1), as the GGUF stores them. Returns 0, or -1 if memory ran out. */
int llama_step(const struct llama *m, int64_t token, int64_t position, float *keys, float *values, float *logits) {
    const int64_t H = m->hidden, D = m->head_dim, heads = m->heads, kv = m->kv_heads, group = heads / kv;
    const int64_t length = position + 1, qkv_width = (heads + 2 * kv) * D;
    float *buffer = malloc(sizeof(float) * (3 * H + qkv_width + 2 * m->inter + heads * D + ((length + 7) & ~7)));
    if (!buffer) return -1;
    float *x = buffer, *normed = x + H, *delta = normed + H, *qkv = delta + H, *gate_up = qkv + qkv_width;
    float *attended = gate_up + 2 * m->inter, *scores = attended + heads * D;
    memcpy(x, m->embed + token * H, sizeof(float) * H);
    const float *rope = m->rope + position * D;
    for (int64_t l = 0; l < m->layers; l++) {
        const uint8_t *const *w = m->matrices + 4 * l;
        const int *kind = m->kinds + 4 * l;
        rms_norm(x, m->norms[2 * l], H, m->eps, normed);
        matmul(kind[0], normed, H, w[0], qkv_width, qkv);
        for (int64_t row = 0; row < heads + kv; row++) { /* rotary embedding of each q and k head */
            float *v = qkv + row * D;
            for (int64_t i = 0; i < D / 2; i++) {
                float a = v[2 * i], b = v[2 * i + 1], c = rope[2 * i], s = rope[2 * i + 1];
                v[2 * i] = a * c - b * s;
                v[2 * i + 1] = a * s + b * c;
            }
        }
        float *layer_keys = keys + l * kv * D * m->capacity, *layer_values = values + l * kv * m->capacity * D;
        for (int64_t g = 0; g < kv; g++)
            for (int64_t d = 0; d < D; d++) {
                layer_keys[(g * D + d) * m->capacity + position] = qkv[(heads + g) * D + d];
                layer_values[(g * m->capacity + position) * D + d] = qkv[(heads + kv + g) * D + d];
            }
        for (int64_t h = 0; h < heads; h++) {
            const float *q = qkv + h * D, *k = layer_keys + (h / group) * D * m->capacity;
            const float *vals = layer_values + (h / group) * m->capacity * D;
            int64_t t = 0;
            for (; t + 8 <= length; t += 8) {
                __m256 s = _mm256_setzero_ps();
                for (int64_t d = 0; d < D; d++) s = _mm256_fmadd_ps(_mm256_set1_ps(q[d]), _mm256_loadu_ps(k + d * m->capacity + t), s);
                _mm256_storeu_ps(scores + t, _mm256_mul_ps(s, _mm256_set1_ps(m->attention_scale)));
            }
            for (; t < length; t++) {
                float s = 0.0f;
                for (int64_t d = 0; d < D; d++) s += q[d] * k[d * m->capacity + t];
                scores[t] = s * m->attention_scale;
            }
            float top = scores[0], total = 0.0f;
            for (t = 1; t < length; t++) top = scores[t] > top ? scores[t] : top;
            for (t = length; t < ((length + 7) & ~7); t++) scores[t] = -INFINITY;
            __m256 sum = _mm256_setzero_ps();
            for (t = 0; t < length; t += 8) {
                __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(scores + t), _mm256_set1_ps(top)));
                _mm256_storeu_ps(scores + t, e);
                sum = _mm256_add_ps(sum, e);
            }
            total = hsum(sum);
            float *out = attended + h * D;
            for (int64_t d = 0; d < D; d += 8) {
                __m256 acc = _mm256_setzero_ps();
                for (t = 0; t < length; t++) acc = _mm256_fmadd_ps(_mm256_set1_ps(scores[t]), _mm256_loadu_ps(vals + t * D + d), acc);
                _mm256_storeu_ps(out + d, _mm256_mul_ps(acc, _mm256_set1_ps(1.0f / total)));
            }
        }
        matmul(kind[1], attended, heads * D, w[1], H, delta);
        for (int64_t i = 0; i < H; i++) x[i] += delta[i];
        rms_norm(x, m->norms[2 * l + 1], H, m->eps, normed);
        matmul(kind[2], normed, H, w[2], 2 * m->inter, gate_up);
        for (int64_t i = 0; i < m->inter; i += 8) { /* silu(gate) * up */
            __m256 g = _mm256_loadu_ps(gate_up + i);
            __m256 silu = _mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), exp8(_mm256_sub_ps(_mm256_setzero_ps(), g))));
            _mm256_storeu_ps(gate_up + i, _mm256_mul_ps(silu, _mm256_loadu_ps(gate_up + m->inter + i)));
        }
        matmul(kind[3], gate_up, m->inter, w[3], H, delta);
        for (int64_t i = 0; i < H; i++) x[i] += delta[i];
    }
    rms_norm(x, m->norms[2 * m->layers], H, m->eps, normed);
    matmul(m->kinds[4 * m->layers], normed, H, m->matrices[4 * m->layers], m->vocab, logits);
    free(buffer);
    return 0;
}
