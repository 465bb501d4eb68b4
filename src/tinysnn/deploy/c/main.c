/* tinysnn CLI: classify MNIST-format IDX test images, print accuracy and µs per image.
 *
 *   tinysnn IMAGES LABELS [-n COUNT] [-s SEED_BASE] [-c] [-f SPIKES]
 *
 * Image n (from 0) is encoded with seed SEED_BASE + n (default TINYSNN_SEED_BASE, the simulator's
 * evaluation seed); -f reads the input spikes from SPIKES instead (format in read_attempt); -c prints
 * each image's spike counts. Runs on the host and, through semihosting, under QEMU. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tinysnn.h"

static uint8_t pixels[TINYSNN_I];
static uint16_t counts[TINYSNN_N];
#ifndef TINYSNN_FILE_EVENTS
#define TINYSNN_FILE_EVENTS 65536L
#endif
static tinysnn_event file_events[TINYSNN_FILE_EVENTS];

static int fail(const char *message, const char *what) {
    fprintf(stderr, "error: %s%s\n", message, what);
    return 2;
}

static int read_u32_be(FILE *f, uint32_t *value) {
    unsigned char b[4];
    if (fread(b, 1, 4, f) != 4) return 0;
    *value = ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
    return 1;
}

static int read_u32_le(FILE *f, uint32_t *value) {
    unsigned char b[4];
    if (fread(b, 1, 4, f) != 4) return 0;
    *value = ((uint32_t)b[3] << 24) | ((uint32_t)b[2] << 16) | ((uint32_t)b[1] << 8) | b[0];
    return 1;
}

/* spikes file, little-endian: "TSPK", u32 images; per image u32 attempts; per attempt u32 n, then
 * n × (u16 step, u16 pixel) sorted by step */
typedef struct {
    FILE *file;
    uint32_t attempts, read;
} spike_file;

static long read_attempt(void *context, int attempt, tinysnn_event *events, long capacity) {
    spike_file *s = (spike_file *)context;
    uint32_t n, k;
    if ((uint32_t)attempt != s->read || attempt >= (int)s->attempts || !read_u32_le(s->file, &n)) return -1;
    if ((long)n > capacity) return -1;
    for (k = 0; k < n; k++) {
        unsigned char b[4];
        if (fread(b, 1, 4, s->file) != 4) return -1;
        events[k].step = (uint16_t)(b[0] | (b[1] << 8));
        events[k].pixel = (uint16_t)(b[2] | (b[3] << 8));
        if (events[k].pixel >= TINYSNN_I || events[k].step >= TINYSNN_T) return -1;
    }
    s->read++;
    return (long)n;
}

int main(int argc, char **argv) {
    const char *images_path = NULL, *labels_path = NULL, *spikes_path = NULL;
    unsigned long count = 0xFFFFFFFFul, base = TINYSNN_SEED_BASE, n, items, correct = 0;
    int print_counts = 0, a;
    uint32_t magic, header;
    FILE *images, *labels, *spikes = NULL;
    clock_t start;
    double seconds;
    for (a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "-n") && a + 1 < argc) count = strtoul(argv[++a], NULL, 10);
        else if (!strcmp(argv[a], "-s") && a + 1 < argc) base = strtoul(argv[++a], NULL, 10);
        else if (!strcmp(argv[a], "-f") && a + 1 < argc) spikes_path = argv[++a];
        else if (!strcmp(argv[a], "-c")) print_counts = 1;
        else if (!images_path) images_path = argv[a];
        else if (!labels_path) labels_path = argv[a];
        else return fail("unexpected argument ", argv[a]);
    }
    if (!images_path || !labels_path) return fail("usage: tinysnn IMAGES LABELS [-n COUNT] [-s SEED] [-c] [-f SPIKES]", "");
    images = fopen(images_path, "rb");
    if (!images) return fail("cannot open ", images_path);
    labels = fopen(labels_path, "rb");
    if (!labels) return fail("cannot open ", labels_path);
    if (!read_u32_be(images, &magic) || magic != 0x803u || !read_u32_be(images, &header))
        return fail("not an IDX image file: ", images_path);
    items = header;
    if (!read_u32_be(images, &header) || !read_u32_be(images, &magic) || header * magic != TINYSNN_I)
        return fail("images are not 28x28: ", images_path);
    if (!read_u32_be(labels, &magic) || magic != 0x801u || !read_u32_be(labels, &header) || header != items)
        return fail("not the labels of these images: ", labels_path);
    if (count > items) count = items;
    if (spikes_path) {
        spikes = fopen(spikes_path, "rb");
        if (!spikes || !read_u32_le(spikes, &magic) || magic != 0x4B505354u || !read_u32_le(spikes, &header)
            || header < count)
            return fail("not a spikes file for these images: ", spikes_path);
    }
    start = clock();
    for (n = 0; n < count; n++) {
        int label = fgetc(labels), predicted;
        if (fread(pixels, 1, TINYSNN_I, images) != TINYSNN_I || label == EOF) return fail("truncated file ", images_path);
        if (spikes) {
            spike_file source;
            source.file = spikes;
            source.read = 0;
            if (!read_u32_le(spikes, &source.attempts)) return fail("truncated spikes file ", spikes_path);
            predicted = tinysnn_classify_spikes(read_attempt, &source, file_events, TINYSNN_FILE_EVENTS, counts);
            if (predicted < 0) return fail("bad or missing attempt in ", spikes_path);
            if (source.read != source.attempts) return fail("the simulator ran more attempts than this image needed: ", spikes_path);
        } else {
            predicted = tinysnn_classify(pixels, (uint32_t)(base + n), counts);
        }
        correct += predicted == label;
        if (print_counts) {
            uint32_t j;
            printf("image %lu %d %d", n, predicted, label);
            for (j = 0; j < TINYSNN_N; j++) printf(" %u", (unsigned)counts[j]);
            printf("\n");
        }
    }
    seconds = (double)(clock() - start) / CLOCKS_PER_SEC;
    printf("images %lu correct %lu accuracy %.4f us_per_image %.2f\n", count, correct,
           count ? (double)correct / (double)count : 0.0, count ? 1e6 * seconds / (double)count : 0.0);
    return 0;
}
