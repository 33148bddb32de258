/* Offsets in struct boot_params (the "zero page") we use: Linux Documentation/arch/x86/zero-page.rst. */
#ifndef KRUN_ARCH_X86_64_ZEROPAGE_H
#define KRUN_ARCH_X86_64_ZEROPAGE_H

#define ZP_EXT_RAMDISK_IMAGE 0x0c0   /* u32: bits 63:32 of ramdisk_image */
#define ZP_EXT_RAMDISK_SIZE  0x0c4
#define ZP_EXT_CMD_LINE_PTR  0x0c8
#define ZP_E820_ENTRIES      0x1e8   /* u8 */
#define ZP_SETUP_HEADER      0x1f1   /* struct setup_header starts here */
#define ZP_SETUP_SECTS       0x1f1   /* u8 */
#define ZP_BOOT_FLAG         0x1fe   /* u16, 0xaa55 */
#define ZP_JUMP              0x200   /* u16; byte 0x201 + 0x202 = end of the setup header */
#define ZP_HEADER            0x202   /* u32, "HdrS" */
#define ZP_VERSION           0x206   /* u16 */
#define ZP_TYPE_OF_LOADER    0x210   /* u8 */
#define ZP_LOADFLAGS         0x211   /* u8 */
#define ZP_RAMDISK_IMAGE     0x218
#define ZP_RAMDISK_SIZE      0x21c
#define ZP_CMD_LINE_PTR      0x228
#define ZP_INITRD_ADDR_MAX   0x22c
#define ZP_XLOADFLAGS        0x236   /* u16 */
#define ZP_CMDLINE_SIZE      0x238
#define ZP_INIT_SIZE         0x260
#define ZP_E820_TABLE        0x2d0   /* 128 x { u64 addr, u64 size, u32 type } packed */
#define ZP_E820_MAX          128
#define ZP_E820_ENTRY_SIZE   20
#define ZP_SIZE              0x1000

#define ZP_HDRS_MAGIC        0x53726448u
#define ZP_BOOT_FLAG_MAGIC   0xaa55
#define ZP_LOADED_HIGH       0x01
#define ZP_XLF_KERNEL_64     0x01
#define ZP_LOADER_UNDEFINED  0xff
#define ZP_E820_RAM          1
#define ZP_E820_RESERVED     2

#endif
