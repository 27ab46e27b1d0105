#pragma once
#include <alsa/asoundlib.h>

/* alsa-lib prints "ALSA lib …" lines to stderr on every failed open; the Swift side reports its own
   errors (naming the device), so this handler drops them. It lives in C because the handler type
   is variadic, which Swift cannot implement. */
static void s4_alsa_quiet_handler(const char *file, int line, const char *function, int err,
                                  const char *fmt, ...) {
    (void)file; (void)line; (void)function; (void)err; (void)fmt;
}

static inline void s4_alsa_silence_errors(void) { snd_lib_error_set_handler(s4_alsa_quiet_handler); }
