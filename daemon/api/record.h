/*
 * record.h: migration records under the state directory (record.c).
 */
#ifndef MIG_RECORD_H
#define MIG_RECORD_H

/* Keeps every migration's record from now on (a model observer). */
void rec_init(void);
/* Reads the records a previous run left; running ones come back PAUSED. */
void rec_load(void);

#endif
