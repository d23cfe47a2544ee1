/* posternd entry point (being written). */
