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

/* the next inter-spike interval G = 1 + ⌊L(x) / D⌋ of a pixel's stream (x: xorshift32) at attempt `attempt`
 * for pixel value `p`; the division is (L·M) >> k with the code generation's reciprocals (exact) */
static uint32_t next_interval(uint32_t *state, int attempt, uint8_t p) {
    uint32_t x = *state, zeros, index, l;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    zeros = leading_zeros(x);
    index = ((x << zeros) >> (31 - TINYSNN_LOG_INDEX_BITS)) & ((1u << TINYSNN_LOG_INDEX_BITS) - 1u);
    l = zeros * TINYSNN_LN2_Q + tinysnn_log_table[index];
    return 1u + (uint32_t)(((uint64_t)l * tinysnn_interval_m[attempt][p]) >> tinysnn_interval_k[attempt][p]);
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
        encoder_schedule((uint16_t)i, next_interval(&encoder.state[i], attempt, pixels[i]) - 1u);
    }
}

/* draws the next spike of `pixel`, which fired at `step` */
static void encoder_advance(const uint8_t pixels[TINYSNN_I], uint16_t pixel, uint32_t step, int attempt) {
    encoder_schedule(pixel, step + next_interval(&encoder.state[pixel], attempt, pixels[pixel]));
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

#if defined(__GNUC__)
#define TINYSNN_INLINE static inline __attribute__((always_inline))
#else
#define TINYSNN_INLINE static inline
#endif

/* A neuron inhibited at t by the spikes of t − delay is not inhibited by its own spike; when the delay
 * is within the refractory period that neuron ignores all input at t anyway, so no correction is needed */
#define TINYSNN_OWN_CORRECTION (TINYSNN_DELAY > TINYSNN_REFRAC)
/* dense rows of a step summed inside the neuron update; more go through syn first */
#define TINYSNN_FUSED_ROWS 12
#define TINYSNN_FIELD_BITS (8 / TINYSNN_CODES_PER_BYTE)

#if TINYSNN_FLOAT_WEIGHTS
typedef float tinysnn_total; /* a neuron's synaptic sum of one step */
#else
typedef int32_t tinysnn_total;
#endif
#if TINYSNN_FLOAT_STATE
typedef int32_t tinysnn_mask;
#else
typedef tinysnn_state tinysnn_mask; /* the state's width: one vector lane each */
#endif

/* Neuron arrays hold TINYSNN_NP = TINYSNN_CODES_PER_BYTE · TINYSNN_ROW_WORDS neurons: rows are padded to
 * whole 16-byte vectors (GCC's -O2 vectoriser only takes loops without a scalar epilogue), and the padding
 * neurons get no input and a threshold they cannot reach, so they never spike. */
typedef struct {
    tinysnn_state u[TINYSNN_NP];
    tinysnn_syn syn[TINYSNN_NP]; /* Σ codes of the step's rows not summed in the update, else 0 */
#if TINYSNN_NARROW_SYN
    int32_t spill[TINYSNN_NP]; /* syn spilled when it might overflow (TINYSNN_SYN_LIMIT rows), else 0 */
    uint32_t rows;             /* rows in syn */
    int spilled;
#endif
    int32_t last[TINYSNN_N];     /* step of the last spike */
    uint16_t counts[TINYSNN_N];
    uint16_t recent[TINYSNN_N];  /* the neurons that spiked within the last R steps, each once */
    uint32_t n_recent;
    uint16_t n_fired[TINYSNN_DELAY]; /* ring: the spike counts of t − delay … t − 1 */
#if TINYSNN_OWN_CORRECTION
    uint16_t fired[TINYSNN_DELAY][TINYSNN_N]; /* … and the neurons */
#endif
    int dirty;                   /* syn holds rows */
} layer_state;

static layer_state layer;

static const tinysnn_weight *dense_row(uint32_t pixel) {
#if TINYSNN_SPARSE
    return tinysnn_weights + (uint32_t)tinysnn_dense_row[pixel] * TINYSNN_ROW_WORDS;
#else
    return tinysnn_weights + pixel * TINYSNN_ROW_WORDS;
#endif
}

/* syn += the weight row of input `pixel` (dense: codes unpacked from TINYSNN_CODES_PER_BYTE per byte); narrow
 * sums (uint16: twice the lanes of int32) spill into int32 before they could overflow */
static void add_row(uint32_t pixel) {
    const tinysnn_weight *row;
    uint32_t j;
#if TINYSNN_CODES_PER_BYTE > 1
    uint32_t p;
#endif
    layer.dirty = 1;
#if TINYSNN_NARROW_SYN
    if (++layer.rows > TINYSNN_SYN_LIMIT) {
        for (j = 0; j < TINYSNN_NP; j++) {
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
#endif
    row = dense_row(pixel);
#if TINYSNN_CODES_PER_BYTE == 1
    for (j = 0; j < TINYSNN_ROW_WORDS; j++) layer.syn[j] = (tinysnn_syn)(layer.syn[j] + row[j]);
#else /* byte j holds neuron p·W + j in its part p (W = TINYSNN_ROW_WORDS): contiguous runs per part */
    for (p = 0; p < TINYSNN_CODES_PER_BYTE; p++)
        for (j = 0; j < TINYSNN_ROW_WORDS; j++)
            layer.syn[p * TINYSNN_ROW_WORDS + j] = (tinysnn_syn)(layer.syn[p * TINYSNN_ROW_WORDS + j]
                                                                 + ((row[j] >> (TINYSNN_FIELD_BITS * p))
                                                                    & ((1u << TINYSNN_FIELD_BITS) - 1u)));
#endif
}

#if TINYSNN_FLOAT_STATE
/* u ← α·u + I with I = Σc_w·ε_w (or Σw) − K·w_inh: two float32 roundings as in the simulator; without
 * inhibitors the −K·w_inh term is +0, which changes no sum (the weight sum is never −0) */
TINYSNN_INLINE float integrate(float u, tinysnn_total syn, int32_t inhibitors) {
#if TINYSNN_FLOAT_WEIGHTS
    float current = syn; /* FP32: the float sum of the rows */
#else
    float current = (float)syn * TINYSNN_W_STEP; /* exact: Σ codes < 2^24 */
#endif
    current = current + (float)(-inhibitors) * TINYSNN_W_INH;
    return u * TINYSNN_DECAY + current;
}
#else
/* c ← ⌊(A·c·2^(s−f) + Σc_w·2^(s−n_w+n_V) + o) / 2^s⌋ − K·c_inh, saturated. A·c·2^(s−f) = c·2^s − a·c·2^(s−f)
 * with a = 2^f − A, so ⌊…⌋ = c + ⌊r / 2^s⌋, r = Σc_w·2^(s−n_w+n_V) − a·c·2^(s−f) + o, shifted non-negative by a
 * bias that is a multiple of 2^s */
TINYSNN_INLINE tinysnn_acc integrate(tinysnn_acc c, tinysnn_total syn, int32_t inhibitors) {
    tinysnn_acc r = (tinysnn_acc)syn * ((tinysnn_acc)1 << TINYSNN_WEIGHT_SHIFT)
                    - c * TINYSNN_LEAK * ((tinysnn_acc)1 << TINYSNN_DECAY_SHIFT) + TINYSNN_ROUND_OFFSET;
    c += (tinysnn_acc)((tinysnn_uacc)(r + TINYSNN_BIAS) >> TINYSNN_SHIFT) - (TINYSNN_BIAS >> TINYSNN_SHIFT);
    c -= (tinysnn_acc)inhibitors * TINYSNN_INH;
    c = c < TINYSNN_U_MIN ? TINYSNN_U_MIN : c;
#if TINYSNN_CLAMP_HIGH
    c = c > TINYSNN_U_MAX ? TINYSNN_U_MAX : c;
#endif
    return c;
}
#endif

#if TINYSNN_NARROW_STATE
/* The same step in 16-bit lanes (the code generation proves every bound for this model's formats). With
 * P = n_w − n_V > 0 and Σc_w·2^(s−n_w+n_V) = Σc_w·2^(s−P):
 *   ⌊r / 2^s⌋ = ⌊(Σc_w + g(c)) / 2^P⌋,  g(c) = ⌊(o − a·c·2^(s−f)) / 2^(s−P)⌋ = (o' − a'·c) >> G_SHIFT
 * (o', a' = o, a·2^(s−f) divided by their common power of two). g and the sum carry a bias that is a multiple
 * of 2^P (G_BIAS after the shift, taken off with the inhibition) so that only non-negative numbers are shifted;
 * syn stays within TINYSNN_SYN_LIMIT rows, so Σc_w + g fits 16 bits. Inhibition beyond INH_CAP saturates to
 * u's minimum all the same, so it is capped there: `inhibition` = min(K·c_inh, INH_CAP) + G_BIAS. */
TINYSNN_INLINE tinysnn_state integrate_narrow(tinysnn_state c, uint16_t syn, tinysnn_state inhibition) {
    uint16_t g = (uint16_t)((uint16_t)(TINYSNN_G_OFFSET - TINYSNN_G_LEAK * c) >> TINYSNN_G_SHIFT);
    c = (tinysnn_state)(c + ((uint16_t)(syn + g) >> TINYSNN_SUM_SHIFT) - inhibition);
    c = c < TINYSNN_U_MIN ? (tinysnn_state)TINYSNN_U_MIN : c;
#if TINYSNN_CLAMP_HIGH
    c = c > TINYSNN_U_MAX ? (tinysnn_state)TINYSNN_U_MAX : c;
#endif
    return c;
}
#endif

/* Every neuron's step before its spike, treated as open to input and inhibited by all K spikes of t − delay
 * (the few for which that is wrong are corrected afterwards), for the row words [begin, end). The step's input:
 * syn and `n_rows` dense rows (a constant after inlining: each count gets its own vectorised loop), summed here,
 * in 16-bit lanes when the codes are narrow: a byte of F codes of B bits read as a number b = Σ_p c_p·2^(B·p)
 * gives S_p = Σ_rows (b >> B·p) = Σ_(q≥p) C_q·2^(B·(q−p)), so C_p = S_p − 2^B·S_(p+1), exact while every
 * C_p < 2^16. `wide` (a constant): a step that spilled, its sums in int32. Returns 0 where a neuron reached
 * its threshold: spikes are rare, so finding them (and resetting) is left to fire() on the steps that have any. */
TINYSNN_INLINE tinysnn_mask update_words(const tinysnn_weight *const row[], const int n_rows, const int wide,
                                         int32_t inhibitors, uint32_t begin, uint32_t end) {
    uint32_t j;
    int r, p;
    tinysnn_mask quiet = -1;
#if TINYSNN_NARROW_STATE
    const int32_t inhibition = inhibitors * TINYSNN_INH;
    const tinysnn_state narrow_inhibition =
        (tinysnn_state)((inhibition < TINYSNN_INH_CAP ? inhibition : TINYSNN_INH_CAP) + TINYSNN_G_BIAS);
#endif
    (void)wide;
    for (j = begin; j < end; j++) {
        tinysnn_syn sum[TINYSNN_CODES_PER_BYTE];
#if TINYSNN_CODES_PER_BYTE == 1
        sum[0] = layer.syn[j]; /* syn first: FP32 sums the rows in their order */
#pragma GCC unroll 16
        for (r = 0; r < n_rows; r++) sum[0] = (tinysnn_syn)(sum[0] + row[r][j]);
#else
#pragma GCC unroll 8
        for (p = 0; p < TINYSNN_CODES_PER_BYTE; p++) sum[p] = 0;
#pragma GCC unroll 16
        for (r = 0; r < n_rows; r++) {
            const uint16_t b = row[r][j];
#pragma GCC unroll 8
            for (p = 0; p < TINYSNN_CODES_PER_BYTE; p++) sum[p] = (uint16_t)(sum[p] + (b >> (TINYSNN_FIELD_BITS * p)));
        }
#pragma GCC unroll 8
        for (p = 0; p < TINYSNN_CODES_PER_BYTE; p++) {
            if (p + 1 < TINYSNN_CODES_PER_BYTE) sum[p] = (uint16_t)(sum[p] - (sum[p + 1] << TINYSNN_FIELD_BITS));
            sum[p] = (tinysnn_syn)(sum[p] + layer.syn[p * TINYSNN_ROW_WORDS + j]);
        }
#endif
#pragma GCC unroll 8
        for (p = 0; p < TINYSNN_CODES_PER_BYTE; p++) {
            const uint32_t n = p * TINYSNN_ROW_WORDS + j;
#if TINYSNN_NARROW_SYN
            const tinysnn_total total = wide ? (tinysnn_total)sum[p] + layer.spill[n] : sum[p];
#else
            const tinysnn_total total = sum[p];
#endif
#if TINYSNN_NARROW_STATE
            tinysnn_state c = wide ? (tinysnn_state)integrate(layer.u[n], total, inhibitors)
                                   : integrate_narrow(layer.u[n], sum[p], narrow_inhibition);
#else
            tinysnn_state c = (tinysnn_state)integrate(layer.u[n], total, inhibitors);
#endif
            layer.u[n] = c;
            quiet &= (tinysnn_mask)-(c < tinysnn_threshold[n]); /* V_th in u's codes, rounded up (qWN) */
        }
    }
    return quiet;
}

/* the update of every neuron (see update_words); returns whether any reached its threshold */
TINYSNN_INLINE int update_layer(const uint16_t *fused, const int n_rows, const int wide, int32_t inhibitors) {
    const tinysnn_weight *row[TINYSNN_FUSED_ROWS];
    int r;
    for (r = 0; r < n_rows; r++) row[r] = dense_row(fused[r]);
#if defined(__AVX2__)
    /* rows are whole 16-byte vectors; with AVX2's 32-byte ones, the last 16 bytes get a loop of their own */
    if (TINYSNN_ROW_WORDS * sizeof(tinysnn_weight) % 32) {
        const uint32_t split = TINYSNN_ROW_WORDS - 16 / sizeof(tinysnn_weight);
        return !(update_words(row, n_rows, wide, inhibitors, 0, split)
                 & update_words(row, n_rows, wide, inhibitors, split, TINYSNN_ROW_WORDS));
    }
#endif
    return !update_words(row, n_rows, wide, inhibitors, 0, TINYSNN_ROW_WORDS);
}

/* the update with `n` fused rows: each count has its own loop */
static int update_fused(const uint16_t *fused, uint32_t n, int32_t inhibitors) {
    switch (n) {
    case 0: return update_layer(fused, 0, 0, inhibitors);
    case 1: return update_layer(fused, 1, 0, inhibitors);
    case 2: return update_layer(fused, 2, 0, inhibitors);
    case 3: return update_layer(fused, 3, 0, inhibitors);
    case 4: return update_layer(fused, 4, 0, inhibitors);
    case 5: return update_layer(fused, 5, 0, inhibitors);
    case 6: return update_layer(fused, 6, 0, inhibitors);
    case 7: return update_layer(fused, 7, 0, inhibitors);
    case 8: return update_layer(fused, 8, 0, inhibitors);
    case 9: return update_layer(fused, 9, 0, inhibitors);
    case 10: return update_layer(fused, 10, 0, inhibitors);
    case 11: return update_layer(fused, 11, 0, inhibitors);
    default: return update_layer(fused, TINYSNN_FUSED_ROWS, 0, inhibitors);
    }
}

/* The update treats every neuron as open; a refractory one ignores input and inhibition, so from u_reset it
 * only decays: k ≤ R steps after its spike it holds refractory_u[k], the same for every neuron. */
static tinysnn_state refractory_u[TINYSNN_REFRAC + 1];

/* the refractory neurons' states after the update; the list drops those open again. Returns whether any
 * reached its threshold (a refractory neuron spikes too when its u does) */
static int refractory(int32_t t) {
    uint32_t e, kept = 0;
    int any = 0;
    for (e = 0; e < layer.n_recent; e++) {
        const uint32_t j = layer.recent[e];
        const int32_t k = t - layer.last[j];
        if (k > TINYSNN_REFRAC) continue;
        layer.recent[kept++] = (uint16_t)j;
        layer.u[j] = refractory_u[k];
        any |= refractory_u[k] >= tinysnn_threshold[j];
    }
    layer.n_recent = kept;
    return any;
}

#if TINYSNN_OWN_CORRECTION
/* the update inhibits every neuron by all K spikes of t − delay; the open neurons among them are stepped here
 * beforehand (from the state before the update) with K − 1, and replace the update's result */
static struct {
    uint16_t neuron;
    tinysnn_state u;
} own[TINYSNN_N];

/* the code of neuron j in a dense row */
static uint32_t code(const tinysnn_weight *row, uint32_t j) {
#if TINYSNN_CODES_PER_BYTE == 1
    return row[j];
#else
    return (row[j % TINYSNN_ROW_WORDS] >> (TINYSNN_FIELD_BITS * (j / TINYSNN_ROW_WORDS)))
           & ((1u << TINYSNN_FIELD_BITS) - 1u);
#endif
}

/* neuron j's synaptic sum, in the update's order: syn, then the fused rows */
static tinysnn_total synaptic(uint32_t j, const uint16_t *fused, uint32_t n_rows) {
    tinysnn_total sum = layer.syn[j];
    uint32_t r;
#if TINYSNN_NARROW_SYN
    sum += layer.spill[j];
#endif
    for (r = 0; r < n_rows; r++) sum += (tinysnn_total)code(dense_row(fused[r]), j);
    return sum;
}

static uint32_t own_step(int32_t t, int32_t inhibitors, const uint16_t *fused, uint32_t n_rows) {
    const uint16_t *fired = layer.fired[(uint32_t)t % TINYSNN_DELAY]; /* the spikes of t − delay */
    uint32_t e, n = 0;
    for (e = 0; e < (uint32_t)inhibitors; e++) {
        const uint32_t j = fired[e];
        if (t - layer.last[j] <= TINYSNN_REFRAC) continue; /* refractory: no inhibition at all */
        own[n].neuron = (uint16_t)j;
        own[n++].u = (tinysnn_state)integrate(layer.u[j], synaptic(j, fused, n_rows), inhibitors - 1);
    }
    return n;
}
#endif

/* spike where u ≥ V_th, then u ← u_reset and t_last ← t; the spiking neurons into `fired` (may be NULL) */
static uint32_t fire(int32_t t, uint16_t *fired) {
    uint32_t j, n = 0;
    for (j = 0; j < TINYSNN_N; j++) {
        if (layer.u[j] < tinysnn_threshold[j]) continue;
        if (t - layer.last[j] > TINYSNN_REFRAC) layer.recent[layer.n_recent++] = (uint16_t)j; /* else listed */
        layer.u[j] = (tinysnn_state)TINYSNN_RESET;
        layer.last[j] = t;
        layer.counts[j]++;
        if (fired) fired[n] = (uint16_t)j;
        n++;
    }
    return n;
}

/* One step of every neuron after the input of the `n` pixels that fired at t (the array is reused); returns
 * the spikes it made. The last TINYSNN_FUSED_ROWS dense rows are summed inside the update, the others (and
 * sparse rows) go through syn first; a step with more than TINYSNN_SYN_LIMIT rows takes the spilling path. */
static uint32_t layer_step(int32_t t, uint16_t *pixels, uint32_t n) {
    const int32_t inhibitors = layer.n_fired[(uint32_t)t % TINYSNN_DELAY]; /* spikes at t − delay */
    uint32_t k, n_dense = 0, n_fused, spikes = 0;
#if TINYSNN_OWN_CORRECTION
    uint32_t n_own;
#endif
    int any, wide = 0;
    for (k = 0; k < n; k++) { /* the dense rows, in order, to the front */
#if TINYSNN_SPARSE
        if (tinysnn_dense_row[pixels[k]] < 0) {
            add_row(pixels[k]);
            continue;
        }
#endif
        pixels[n_dense++] = pixels[k];
    }
#if TINYSNN_NARROW_SYN
    wide = n > TINYSNN_SYN_LIMIT;
#endif
    n_fused = wide ? 0 : (n_dense < TINYSNN_FUSED_ROWS ? n_dense : TINYSNN_FUSED_ROWS);
    for (k = 0; k < n_dense - n_fused; k++) add_row(pixels[k]);
#if TINYSNN_OWN_CORRECTION
    n_own = own_step(t, inhibitors, pixels + k, n_fused);
#endif
#if TINYSNN_NARROW_SYN
    any = wide ? update_layer(pixels, 0, 1, inhibitors) : update_fused(pixels + k, n_fused, inhibitors);
#else
    any = update_fused(pixels + k, n_fused, inhibitors);
#endif
#if TINYSNN_OWN_CORRECTION
    for (k = 0; k < n_own; k++) {
        layer.u[own[k].neuron] = own[k].u;
        any |= own[k].u >= tinysnn_threshold[own[k].neuron];
    }
#endif
    any |= refractory(t);
    if (layer.dirty) {
        memset(layer.syn, 0, sizeof layer.syn);
#if TINYSNN_NARROW_SYN
        if (layer.spilled) memset(layer.spill, 0, sizeof layer.spill);
        layer.rows = 0;
        layer.spilled = 0;
#endif
        layer.dirty = 0;
    }
#if TINYSNN_OWN_CORRECTION
    if (any) spikes = fire(t, layer.fired[(uint32_t)t % TINYSNN_DELAY]);
#else
    if (any) spikes = fire(t, NULL);
#endif
    layer.n_fired[(uint32_t)t % TINYSNN_DELAY] = (uint16_t)spikes;
    return spikes;
}

static void layer_reset(void) {
    uint32_t j;
    memset(&layer, 0, sizeof layer); /* u = 0: all-zero bits are 0 and +0.0f */
    for (j = 0; j < TINYSNN_N; j++) layer.last[j] = NEVER_FIRED;
    refractory_u[0] = (tinysnn_state)TINYSNN_RESET;
    for (j = 1; j <= TINYSNN_REFRAC; j++) refractory_u[j] = (tinysnn_state)integrate(refractory_u[j - 1], 0, 0);
}

/* ---- presentations, retries, readout ------------------------------------------------------- */

/* the all-activity readout of spike counts (tinysnn.evaluation.predict_all_activity, first maximum) */
static int readout(const uint16_t counts[TINYSNN_N]) {
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
        for (j = 0; j < TINYSNN_N; j++) counts_out[j] = layer.counts[j];
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
            uint32_t n = 0;
            while (pixel != NO_PIXEL) {
                uint16_t following = encoder.next[pixel];
                step_pixels[n++] = pixel;
                encoder_advance(pixels, pixel, (uint32_t)t, attempt);
                pixel = following;
            }
#if TINYSNN_FLOAT_WEIGHTS
            sort_pixels(n); /* float sums in the simulator's order: by pixel */
#endif
            total += layer_step(t, step_pixels, n);
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
            uint32_t k = 0;
            for (; e < n && buffer[e].step == t; e++) step_pixels[k++] = buffer[e].pixel;
            total += layer_step(t, step_pixels, k);
        }
        if (total >= TINYSNN_MIN_SPIKES) break;
    }
    return finish(counts_out);
}
