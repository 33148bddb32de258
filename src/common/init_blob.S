/* Embeds build/init.krun into the library; the path comes from the Makefile (-DINIT_BLOB_PATH). */
	.section .rodata
	.balign 16
	.globl krun_init_blob
	.hidden krun_init_blob
	.type krun_init_blob, @object
krun_init_blob:
	.incbin INIT_BLOB_PATH
krun_init_blob_end:
	.size krun_init_blob, krun_init_blob_end - krun_init_blob
	.balign 8
	.globl krun_init_blob_size
	.hidden krun_init_blob_size
	.type krun_init_blob_size, @object
krun_init_blob_size:
	.quad krun_init_blob_end - krun_init_blob
	.size krun_init_blob_size, 8
	.section .note.GNU-stack,"",@progbits
