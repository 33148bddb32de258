/* Embeds the flat guest kernel image (kernel/flatten output, path from -DKRUNFW_IMAGE_PATH). */
/*
 * Writable data, 64 KiB aligned: the public libkrun maps these pages straight into guest RAM
 * (private copy-on-write), and the guest writes its own .data there.
 */
	.section .data.krunfw_image,"aw",@progbits
	.balign 65536
	.globl fw_image_start
	.hidden fw_image_start
	.type fw_image_start, @object
fw_image_start:
	.incbin KRUNFW_IMAGE_PATH
	.globl fw_image_end
	.hidden fw_image_end
fw_image_end:
	.size fw_image_start, fw_image_end - fw_image_start
	.section .note.GNU-stack,"",@progbits
