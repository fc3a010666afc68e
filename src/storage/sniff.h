/* Telling media types by their first bytes (magic numbers), not by what the client declares. */
#ifndef SC_STORAGE_SNIFF_H
#define SC_STORAGE_SNIFF_H

#include <stddef.h>

/* Bytes the sniffers look at: enough for an Ogg page header with a full segment table and the codec's magic. */
#define SC_SNIFF_BYTES 512

typedef struct sc_sniffed {
    const char *mime;    /* "audio/flac", "image/png", ... */
    const char *demuxer; /* the ffprobe demuxer for the format (-f), NULL for images */
} sc_sniffed;

/* JPEG, PNG, GIF or WebP; n is what is available (SC_SNIFF_BYTES, or less for a shorter file). Returns 0, or -1
 * for anything else. */
int sc_sniff_image(const unsigned char *p, size_t n, sc_sniffed *out);

/* MP3 (an ID3v2 tag or an MPEG audio frame header), AAC (ADTS), FLAC, Ogg (Opus when its first packet is
 * OpusHead), MP4/M4A (an ftyp box with a known brand), WAV (RIFF/RF64 ... WAVE). Returns 0, or -1. */
int sc_sniff_audio(const unsigned char *p, size_t n, sc_sniffed *out);

#endif
