/* torch's CPU generator, MT19937 (ATen's at::mt19937), run from its own state: torch.rand's float32
 * uniforms and Bernoulli spikes, bit for bit what torch gives, and the generator left where torch.rand
 * leaves it. torch.rand's float32 uniform is u = k · 2^−24 with k = y & (2^24 − 1) of one 32-bit output
 * y; so u < p  ⇔  k < ⌈p · 2^24⌉ (``threshold`` below, computed by the caller). The state is torch's
 * Generator.get_state() bytes, read and written in place (the caller hands them back with set_state).
 */
#include <stdint.h>

#define MT_N 624
#define MT_M 397

/* the leading fields of torch's CPUGeneratorImplState (its legacy_pod), as get_state() lays them out */
typedef struct {
    uint64_t initial_seed;
    int32_t left;   /* outputs left in the block + 1; 1: the block is used up */
    int32_t seeded;
    uint64_t next;  /* index of the next output in the block */
    uint64_t state[MT_N];
} torch_mt_state;

static inline uint32_t twist(uint32_t u, uint32_t v) {
    return (((u & 0x80000000u) | (v & 0x7fffffffu)) >> 1) ^ ((v & 1u) ? 0x9908b0dfu : 0u);
}

static void next_block(uint32_t *s) {
    uint32_t *p = s;
    int j;
    for (j = MT_N - MT_M + 1; --j; p++) *p = p[MT_M] ^ twist(p[0], p[1]);
    for (j = MT_M; --j; p++) *p = p[MT_M - MT_N] ^ twist(p[0], p[1]);
    *p = p[MT_M - MT_N] ^ twist(p[0], s[0]);
}

static inline uint32_t temper(uint32_t y) {
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

static void load_state(const torch_mt_state *mt, uint32_t *s) {
    for (int i = 0; i < MT_N; i++) s[i] = (uint32_t)mt->state[i];
}

static void store_state(torch_mt_state *mt, const uint32_t *s, int64_t left, int64_t next) {
    for (int i = 0; i < MT_N; i++) mt->state[i] = s[i];
    mt->left = (int32_t)left;
    mt->next = (uint64_t)next;
}

/* The next run of at most ``wanted`` outputs of the current block (a fresh block when it is used up, as
 * at::mt19937 makes one): s[*first … *first + k − 1] untempered; returns k and moves left and next past it. */
static int64_t take_run(uint32_t *s, int64_t *left, int64_t *next, int64_t wanted, int64_t *first) {
    if (*left == 1) {
        next_block(s);
        *left = MT_N + 1;
        *next = 0;
    }
    int64_t k = *left - 1;
    if (k > wanted) k = wanted;
    *first = *next;
    *next += k;
    *left -= k;
    return k;
}

/* out[0 … n − 1] = torch.rand(n)'s uniforms */
void uniform_fill(uint8_t *generator_state, float *out, int64_t n) {
    if (n <= 0) return;
    torch_mt_state *mt = (torch_mt_state *)generator_state;
    uint32_t s[MT_N];
    load_state(mt, s);
    int64_t left = mt->left, next = (int64_t)mt->next;
    for (int64_t pos = 0; pos < n;) {
        int64_t first, k = take_run(s, &left, &next, n - pos, &first);
        for (int64_t i = 0; i < k; i++) out[pos + i] = (float)(temper(s[first + i]) & 0xffffffu) * (1.0f / 16777216.0f);
        pos += k;
    }
    store_state(mt, s, left, next);
}

/* Draws number pos … total − 1 of a [steps, active] draw (row-major: draw i is step i / active, pixel
 * i % active) and lists (step, pixel) of each draw below its pixel's threshold. Stops early when fewer
 * than one block's worth of slots (+ 1) is left in the output (capacity); returns the position reached and
 * the number listed in *listed. */
int64_t bernoulli_events(uint8_t *generator_state, const uint32_t *threshold, int64_t active, int64_t total,
                         int64_t pos, int64_t *time_out, int64_t *pixel_out, int64_t capacity, int64_t *listed) {
    *listed = 0;
    if (pos >= total) return pos; /* nothing to draw (no active pixel): the generator is untouched */
    torch_mt_state *mt = (torch_mt_state *)generator_state;
    uint32_t s[MT_N], block[MT_N];
    load_state(mt, s);
    int64_t left = mt->left, next = (int64_t)mt->next, n = 0;
    int64_t t = pos / active, a = pos % active;
    while (pos < total && n + MT_N < capacity) {
        int64_t first, k = take_run(s, &left, &next, total - pos, &first);
        for (int64_t i = 0; i < k; i++) block[i] = temper(s[first + i]) & 0xffffffu;
        for (int64_t i = 0; i < k; i++) {  /* written always, kept when a spike: no branch to mispredict */
            time_out[n] = t;
            pixel_out[n] = a;
            n += block[i] < threshold[a];
            if (++a == active) {
                a = 0;
                t++;
            }
        }
        pos += k;
    }
    store_state(mt, s, left, next);
    *listed = n;
    return pos;
}

/* order[k] = the index of the k-th of n events stably sorted by time (0 ≤ time < steps): a counting sort,
 * with start (steps + 1 zeros) as its scratch. Lists of several streams, each time-sorted and concatenated
 * stream after stream, come out ordered by (time, stream, pixel). */
void order_by_time(const int64_t *time, int64_t n, int64_t steps, int64_t *start, int64_t *order) {
    for (int64_t i = 0; i < n; i++) start[time[i] + 1]++;
    for (int64_t t = 0; t < steps; t++) start[t + 1] += start[t];
    for (int64_t i = 0; i < n; i++) order[start[time[i]]++] = i;
}
