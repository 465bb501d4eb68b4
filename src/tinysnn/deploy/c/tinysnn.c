/* tinysnn C99 runtime: device Poisson encoder, event-driven input, LIF layer with refractory
 * period, frozen thresholds V_th = u_th + θ, direct lateral inhibition after a delay, retries and
 * the all-activity readout. It mirrors tinysnn.quant.integer (qWN) and tinysnn.sim (qW) step by step:
 *
 *   qWN (codes): x = A·c·2^(s−f) + Σc_w·2^(s−n_w+n_V)         (0 while refractory)
 *                c ← ⌊(x + o) / 2^s⌋ − K·c_inh, saturated       (o = 0 truncate, 2^(s−1) nearest)
 *   qW (float32): I = Σc_w·ε_w − K·w_inh (0 while refractory); u ← α·u + I
 *   FP32: the same with I = Σw summed in float32 by pixel, as the simulator sums a step's rows
 *   spike where u ≥ V_th, then u ← u_reset and t_last ← t;  K = spikes at t − delay, less the own one.
 */
#include "tinysnn.h"

#include <string.h>

#define NEVER_FIRED (-1000000L)
#define NO_PIXEL 0xFFFFu

/* ---- device Poisson encoder (tinysnn.device_encoding) ------------------------------------- */

static uint32_t fmix32(uint32_t h) {
    h ^= h >> 16;
    h *= 0x85EBCA6Bu;
    h ^= h >> 13;
    h *= 0xC2B2AE35u;
    h ^= h >> 16;
    return h;
}

static uint32_t leading_zeros(uint32_t x) { /* x != 0 */
#if defined(__GNUC__)
    return (uint32_t)__builtin_clz(x);
#else
    uint32_t n = 0;
    while (!(x & 0x80000000u)) {
        x <<= 1;
        n++;
    }
    return n;
#endif
}

/* the next inter-spike interval G = 1 + L(x)/D of a pixel's stream (x: xorshift32) */
static uint32_t next_interval(uint32_t *state, uint32_t interval) {
    uint32_t x = *state, zeros, index;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    zeros = leading_zeros(x);
    index = ((x << zeros) >> (31 - TINYSNN_LOG_INDEX_BITS)) & ((1u << TINYSNN_LOG_INDEX_BITS) - 1u);
    return 1u + (zeros * TINYSNN_LN2_Q + tinysnn_log_table[index]) / interval;
}

/* calendar of the next spike of each pixel: head[t] lists the pixels firing at step t */
typedef struct {
    uint32_t state[TINYSNN_I];
    uint16_t next[TINYSNN_I];
    uint16_t head[TINYSNN_T];
} encoder_state;

static encoder_state encoder;

static void encoder_schedule(uint16_t pixel, uint32_t step) {
    if (step < TINYSNN_T) {
        encoder.next[pixel] = encoder.head[step];
        encoder.head[step] = pixel;
    }
}

static void encoder_start(const uint8_t pixels[TINYSNN_I], uint32_t seed, int attempt) {
    uint32_t i;
    for (i = 0; i < TINYSNN_T; i++) encoder.head[i] = NO_PIXEL;
    for (i = 0; i < TINYSNN_I; i++) {
        uint32_t state;
        if (!pixels[i]) continue;
        state = fmix32(seed + 0x9E3779B9u * ((uint32_t)attempt * TINYSNN_I + i + 1u));
        encoder.state[i] = state ? state : 1u;
        encoder_schedule((uint16_t)i, next_interval(&encoder.state[i], tinysnn_intervals[attempt][pixels[i]]) - 1u);
    }
}

/* draws the next spike of `pixel`, which fired at `step` */
static void encoder_advance(const uint8_t pixels[TINYSNN_I], uint16_t pixel, uint32_t step, int attempt) {
    encoder_schedule(pixel, step + next_interval(&encoder.state[pixel], tinysnn_intervals[attempt][pixels[pixel]]));
}

long tinysnn_encode(const uint8_t pixels[TINYSNN_I], uint32_t seed, int attempt, tinysnn_event *events,
                    long capacity) {
    long n = 0;
    uint32_t t;
    encoder_start(pixels, seed, attempt);
    for (t = 0; t < TINYSNN_T; t++) {
        uint16_t pixel = encoder.head[t];
        while (pixel != NO_PIXEL) {
            uint16_t following = encoder.next[pixel];
            if (n == capacity) return -1;
            events[n].step = (uint16_t)t;
            events[n].pixel = pixel;
            n++;
            encoder_advance(pixels, pixel, t, attempt);
            pixel = following;
        }
    }
    return n;
}

/* ---- the excitatory layer ------------------------------------------------------------------ */

/* A neuron inhibited at t by the spikes of t − delay is not inhibited by its own spike; when the delay
 * is within the refractory period that neuron ignores all input at t anyway, so no correction is needed */
#define TINYSNN_OWN_CORRECTION (TINYSNN_DELAY > TINYSNN_REFRAC)

typedef struct {
    tinysnn_state u[TINYSNN_N];
    int32_t last[TINYSNN_N];  /* step of the last spike */
    tinysnn_syn syn[TINYSNN_SYN_N]; /* Σ weight codes of this step's input spikes (padded to whole words) */
#if TINYSNN_NARROW_SYN
    int32_t spill[TINYSNN_N]; /* syn spilled when it might overflow (TINYSNN_SYN_LIMIT rows), else 0 */
    uint32_t rows;            /* rows in syn */
    int spilled;
#endif
#if TINYSNN_OWN_CORRECTION
    int32_t own[TINYSNN_N];   /* 1: among the inhibiting spikes (not inhibited by itself) */
#endif
    int32_t counts[TINYSNN_N];
    uint16_t fired[TINYSNN_DELAY][TINYSNN_N]; /* ring: the neurons that spiked at t − delay … t − 1 */
    uint16_t n_fired[TINYSNN_DELAY];
} layer_state;

static layer_state layer;

static void layer_reset(void) {
    uint32_t j;
    for (j = 0; j < TINYSNN_N; j++) {
        layer.u[j] = 0;
        layer.last[j] = NEVER_FIRED;
        layer.counts[j] = 0;
#if TINYSNN_OWN_CORRECTION
        layer.own[j] = 0;
#endif
    }
    memset(layer.n_fired, 0, sizeof layer.n_fired);
#if TINYSNN_NARROW_SYN
    memset(layer.spill, 0, sizeof layer.spill);
    layer.rows = 0;
    layer.spilled = 0;
#endif
}

/* syn += the weight row of input `pixel` (codes unpacked from TINYSNN_CODES_PER_BYTE per byte); narrow
 * sums (uint16: twice the lanes of int32) spill into int32 before they could overflow */
static void add_row(uint32_t pixel) {
    const tinysnn_weight *row;
    uint32_t j;
#if TINYSNN_NARROW_SYN
    if (++layer.rows > TINYSNN_SYN_LIMIT) {
        for (j = 0; j < TINYSNN_N; j++) {
            layer.spill[j] += layer.syn[j];
            layer.syn[j] = 0;
        }
        layer.rows = 1;
        layer.spilled = 1;
    }
#endif
#if TINYSNN_SPARSE
    if (tinysnn_dense_row[pixel] < 0) { /* a pruned row: its non-zero codes only */
        uint32_t e;
        for (e = tinysnn_sparse_start[pixel]; e < tinysnn_sparse_start[pixel + 1]; e++) {
            tinysnn_entry x = tinysnn_sparse[e];
            j = (uint32_t)(x >> TINYSNN_CODE_BITS);
            layer.syn[j] = (tinysnn_syn)(layer.syn[j] + (x & ((1u << TINYSNN_CODE_BITS) - 1u)));
        }
        return;
    }
    row = tinysnn_weights + (uint32_t)tinysnn_dense_row[pixel] * TINYSNN_ROW_WORDS;
#else
    row = tinysnn_weights + pixel * TINYSNN_ROW_WORDS;
#endif
#if TINYSNN_CODES_PER_BYTE == 1
    for (j = 0; j < TINYSNN_N; j++) layer.syn[j] = (tinysnn_syn)(layer.syn[j] + row[j]);
#else /* byte j holds neuron p·W + j in its part p (W = TINYSNN_ROW_WORDS): contiguous runs per part */
    {
        tinysnn_syn *syn = layer.syn;
        const uint32_t w = TINYSNN_ROW_WORDS;
        for (j = 0; j < w; j++) {
            uint16_t b = row[j];
#if TINYSNN_CODES_PER_BYTE == 2
            syn[j] = (tinysnn_syn)(syn[j] + (b & 0x0Fu));
            syn[w + j] = (tinysnn_syn)(syn[w + j] + (b >> 4));
#else
            syn[j] = (tinysnn_syn)(syn[j] + (b & 0x03u));
            syn[w + j] = (tinysnn_syn)(syn[w + j] + ((b >> 2) & 0x03u));
            syn[2 * w + j] = (tinysnn_syn)(syn[2 * w + j] + ((b >> 4) & 0x03u));
            syn[3 * w + j] = (tinysnn_syn)(syn[3 * w + j] + (b >> 6));
#endif
        }
    }
#endif
}

#if defined(__GNUC__)
#define TINYSNN_INLINE static inline __attribute__((always_inline))
#else
#define TINYSNN_INLINE static inline
#endif

/* every neuron's step after this step's input; `spilled` (a constant after inlining): add the spilled sums */
TINYSNN_INLINE int layer_update(int32_t t, int32_t inhibitors, const int spilled) {
    uint32_t j;
    int any = 0;
#if !TINYSNN_FLOAT_STATE
    const tinysnn_acc inhibition = (tinysnn_acc)inhibitors * TINYSNN_INH;
#endif
    (void)spilled;
    for (j = 0; j < TINYSNN_N; j++) {
        int32_t open = t - layer.last[j] > TINYSNN_REFRAC; /* input ignored while refractory */
#if TINYSNN_NARROW_SYN
        int32_t syn = (int32_t)layer.syn[j] + (spilled ? layer.spill[j] : 0);
#else
        tinysnn_syn syn = layer.syn[j];
#endif
        int32_t spike;
#if TINYSNN_OWN_CORRECTION
        int32_t own = layer.own[j];
#else
        const int32_t own = 0;
#endif
#if TINYSNN_FLOAT_STATE
#if TINYSNN_FLOAT_WEIGHTS
        float current = syn; /* FP32: the float sum of the rows */
#else
        float current = (float)syn * TINYSNN_W_STEP; /* exact: Σ codes < 2^24 */
#endif
        float u;
        /* + (s_j − K)·w_inh; without inhibitors that adds +0, which changes no sum (current is never −0) */
        current = current + (float)(own - inhibitors) * TINYSNN_W_INH;
        u = layer.u[j] * TINYSNN_DECAY + (open ? current : 0.0f);
        spike = u >= tinysnn_threshold[j];
        layer.u[j] = spike ? TINYSNN_RESET : u;
#else
        /* A·c·2^(s−f) = c·2^s − a·c·2^(s−f) with a = 2^f − A, so ⌊(x + o) / 2^s⌋ = c + ⌊r / 2^s⌋,
         * r = Σc_w·2^(s−n_w+n_V) − a·c·2^(s−f) + o, shifted non-negative by a bias that is a multiple of 2^s */
        tinysnn_acc c = layer.u[j];
        tinysnn_acc r = (tinysnn_acc)(open ? syn : 0) * ((tinysnn_acc)1 << TINYSNN_WEIGHT_SHIFT)
                        - c * TINYSNN_LEAK * ((tinysnn_acc)1 << TINYSNN_DECAY_SHIFT) + TINYSNN_ROUND_OFFSET;
        c += (tinysnn_acc)((tinysnn_uacc)(r + TINYSNN_BIAS) >> TINYSNN_SHIFT) - (TINYSNN_BIAS >> TINYSNN_SHIFT);
        c -= open ? inhibition - own * TINYSNN_INH : 0;
        c = c < TINYSNN_U_MIN ? TINYSNN_U_MIN : c;
#if TINYSNN_CLAMP_HIGH
        c = c > TINYSNN_U_MAX ? TINYSNN_U_MAX : c;
#endif
        spike = c >= tinysnn_threshold[j]; /* V_th in u's codes, rounded up */
        layer.u[j] = (tinysnn_state)(spike ? TINYSNN_RESET : c);
#endif
        layer.last[j] = spike ? t : layer.last[j];
        layer.counts[j] += spike;
        layer.syn[j] = 0;
        any |= spike;
    }
    return any;
}

/* one step of every neuron after this step's input (syn); returns the spikes it made */
static uint32_t layer_step(int32_t t) {
    uint16_t *fired = layer.fired[t % TINYSNN_DELAY];
    int32_t inhibitors = layer.n_fired[t % TINYSNN_DELAY]; /* spikes at t − delay */
    uint32_t j, k, spikes = 0;
    int any;
#if TINYSNN_OWN_CORRECTION
    for (k = 0; k < (uint32_t)inhibitors; k++) layer.own[fired[k]] = 1;
#endif
#if TINYSNN_NARROW_SYN
    any = layer.spilled ? layer_update(t, inhibitors, 1) : layer_update(t, inhibitors, 0);
    layer.rows = 0;
    if (layer.spilled) {
        memset(layer.spill, 0, sizeof layer.spill);
        layer.spilled = 0;
    }
#else
    any = layer_update(t, inhibitors, 0);
#endif
#if TINYSNN_OWN_CORRECTION
    for (k = 0; k < (uint32_t)inhibitors; k++) layer.own[fired[k]] = 0;
#else
    (void)k;
#endif
    if (any) {
        for (j = 0; j < TINYSNN_N; j++)
            if (layer.last[j] == t) fired[spikes++] = (uint16_t)j;
    }
    layer.n_fired[t % TINYSNN_DELAY] = (uint16_t)spikes;
    return spikes;
}

/* ---- presentations, retries, readout ------------------------------------------------------- */

/* the all-activity readout of spike counts (tinysnn.evaluation.predict_all_activity, first maximum) */
static int readout(const int32_t counts[TINYSNN_N]) {
    uint32_t sum[TINYSNN_CLASSES] = {0}, members[TINYSNN_CLASSES] = {0};
    uint32_t j;
    int c, best = 0;
    for (j = 0; j < TINYSNN_N; j++) {
        if (tinysnn_assignments[j] < 0) continue;
        sum[tinysnn_assignments[j]] += counts[j];
        members[tinysnn_assignments[j]]++;
    }
    for (c = 0; c < TINYSNN_CLASSES; c++)
        if (!members[c]) members[c] = 1; /* score 0 */
    /* score_c = sum_c / members_c; compared exactly as sum_c·members_b > sum_b·members_c */
    for (c = 1; c < TINYSNN_CLASSES; c++)
        if ((uint64_t)sum[c] * members[best] > (uint64_t)sum[best] * members[c]) best = c;
    return best;
}

static int finish(uint16_t counts_out[TINYSNN_N]) {
    uint32_t j;
    if (counts_out)
        for (j = 0; j < TINYSNN_N; j++) counts_out[j] = (uint16_t)layer.counts[j];
    return readout(layer.counts);
}

/* the pixels firing at one step */
static uint16_t step_pixels[TINYSNN_I];

#if TINYSNN_FLOAT_WEIGHTS
static void sort_pixels(uint32_t n) { /* insertion sort: a few pixels per step */
    uint32_t i, k;
    for (i = 1; i < n; i++) {
        uint16_t pixel = step_pixels[i];
        for (k = i; k > 0 && step_pixels[k - 1] > pixel; k--) step_pixels[k] = step_pixels[k - 1];
        step_pixels[k] = pixel;
    }
}
#endif

int tinysnn_classify(const uint8_t pixels[TINYSNN_I], uint32_t seed, uint16_t counts_out[TINYSNN_N]) {
    int attempt;
    uint32_t total = 0;
    for (attempt = 0; attempt <= TINYSNN_MAX_RETRIES; attempt++) {
        int32_t t;
        layer_reset();
        encoder_start(pixels, seed, attempt);
        total = 0;
        for (t = 0; t < TINYSNN_T; t++) {
            uint16_t pixel = encoder.head[t];
            uint32_t n = 0, k;
            while (pixel != NO_PIXEL) {
                uint16_t following = encoder.next[pixel];
                step_pixels[n++] = pixel;
                encoder_advance(pixels, pixel, (uint32_t)t, attempt);
                pixel = following;
            }
#if TINYSNN_FLOAT_WEIGHTS
            sort_pixels(n); /* float sums in the simulator's order: by pixel */
#endif
            for (k = 0; k < n; k++) add_row(step_pixels[k]);
            total += layer_step(t);
        }
        if (total >= TINYSNN_MIN_SPIKES) break;
    }
    return finish(counts_out);
}

int tinysnn_classify_spikes(tinysnn_spike_source source, void *context, tinysnn_event *buffer, long capacity,
                            uint16_t counts_out[TINYSNN_N]) {
    int attempt;
    uint32_t total = 0;
    for (attempt = 0; attempt <= TINYSNN_MAX_RETRIES; attempt++) {
        long n = source(context, attempt, buffer, capacity), e = 0;
        int32_t t;
        if (n < 0) return -1;
        layer_reset();
        total = 0;
        for (t = 0; t < TINYSNN_T; t++) {
            for (; e < n && buffer[e].step == t; e++) add_row(buffer[e].pixel);
            total += layer_step(t);
        }
        if (total >= TINYSNN_MIN_SPIKES) break;
    }
    return finish(counts_out);
}
