/* Minimal Cortex-M7 startup for QEMU's mps2-an500: the vector table, FPU on, .data copied from
 * flash, then newlib's semihosting crt0 (_start: .bss, stack, main, exit). */
#include <stdint.h>

extern uint32_t __stack_top, __data_load, __data_start, __data_end;
extern void _start(void);

void reset_handler(void);
void fault_handler(void);

__attribute__((section(".vectors"), used)) static void (*const vectors[16])(void) = {
    (void (*)(void))(&__stack_top), reset_handler, fault_handler, fault_handler, fault_handler,
    fault_handler, fault_handler, 0, 0, 0, 0, fault_handler, fault_handler, 0, fault_handler, fault_handler,
};

void reset_handler(void) {
    volatile uint32_t *cpacr = (volatile uint32_t *)0xE000ED88u;
    uint32_t *src = &__data_load, *dst = &__data_start;
    *cpacr |= 0xFu << 20; /* CP10, CP11: full access to the FPU */
    __asm__ volatile("dsb\n\tisb");
    while (dst < &__data_end) *dst++ = *src++;
    _start();
    for (;;) {
    }
}

void fault_handler(void) {
    /* semihosting SYS_EXIT with ADP_Stopped_RunTimeErrorUnknown: QEMU exits instead of hanging */
    register uint32_t op __asm__("r0") = 0x18u;
    register uint32_t arg __asm__("r1") = 0x20023u;
    __asm__ volatile("bkpt 0xAB" : : "r"(op), "r"(arg) : "memory");
    for (;;) {
    }
}
