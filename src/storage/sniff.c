/* Magic numbers of the media types uploads accept.
 *
 *     JPEG  FF D8 FF                      PNG   89 'PNG' 0D 0A 1A 0A        GIF  'GIF87a' | 'GIF89a'
 *     WebP  'RIFF' <size:4> 'WEBP'        WAV   'RIFF' | 'RF64' <size:4> 'WAVE'
 *     FLAC  'fLaC'                        MP3   'ID3' <ver 2..4> ... | FF Ex/Fx frame header (layer I-III)
 *     AAC   FF F0/F1/F8/F9 (ADTS: layer bits 00)
 *     Ogg   'OggS' 00 ... <segments:1 at 26> <table> first packet ('OpusHead' for Opus)
 *     MP4   <size:4> 'ftyp' <major brand:4>  (M4A , M4B , mp42, isom ...)
 *
 * These only choose the candidate format and refuse everything else early; ffprobe, told to read exactly that
 * format, has the last word. */
#include "storage/sniff.h"

#include <string.h>

static int set(sc_sniffed *out, const char *mime, const char *demuxer)
{
    out->mime = mime;
    out->demuxer = demuxer;
    return 0;
}

int sc_sniff_image(const unsigned char *p, size_t n, sc_sniffed *out)
{
    if (n >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF)
        return set(out, "image/jpeg", NULL);
    if (n >= 8 && memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0)
        return set(out, "image/png", NULL);
    if (n >= 6 && (memcmp(p, "GIF87a", 6) == 0 || memcmp(p, "GIF89a", 6) == 0))
        return set(out, "image/gif", NULL);
    if (n >= 12 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "WEBP", 4) == 0)
        return set(out, "image/webp", NULL);
    return -1;
}

static int mpeg_audio_header(const unsigned char *p, size_t n)
{
    if (n < 4 || p[0] != 0xFF || (p[1] & 0xE0) != 0xE0)
        return -1;
    unsigned version = (p[1] >> 3) & 3, layer = (p[1] >> 1) & 3;
    if (layer == 0)
        return (p[1] & 0xF6) == 0xF0 ? 1 : -1; /* ADTS (AAC): MPEG-4 or -2, layer 00 */
    if (version == 1 || (p[2] >> 4) == 0xF || ((p[2] >> 2) & 3) == 3)
        return -1; /* reserved version, bad bitrate index, reserved sample rate */
    return 0;
}

static const char *const mp4_brands[] = {"M4A ", "M4B ", "M4P ", "mp41", "mp42", "isom", "iso2",
                                         "iso3", "iso4", "iso5", "iso6", "dash", "MSNV", "F4A ",
                                         "F4B ", "3gp4", "3gp5", "3gp6", "qt  "};

int sc_sniff_audio(const unsigned char *p, size_t n, sc_sniffed *out)
{
    if (n >= 10 && memcmp(p, "ID3", 3) == 0 && p[3] >= 2 && p[3] <= 4 && p[4] != 0xFF)
        return set(out, "audio/mpeg", "mp3");
    int mpeg = mpeg_audio_header(p, n);
    if (mpeg == 0)
        return set(out, "audio/mpeg", "mp3");
    if (mpeg == 1)
        return set(out, "audio/aac", "aac");
    if (n >= 4 && memcmp(p, "fLaC", 4) == 0)
        return set(out, "audio/flac", "flac");
    if (n >= 27 && memcmp(p, "OggS", 4) == 0 && p[4] == 0) {
        size_t data = 27 + (size_t)p[26];
        if (n >= data + 8 && memcmp(p + data, "OpusHead", 8) == 0)
            return set(out, "audio/ogg; codecs=opus", "ogg");
        return set(out, "audio/ogg", "ogg");
    }
    if (n >= 12 && memcmp(p + 4, "ftyp", 4) == 0) {
        for (size_t i = 0; i < sizeof(mp4_brands) / sizeof(mp4_brands[0]); i++)
            if (memcmp(p + 8, mp4_brands[i], 4) == 0)
                return set(out, "audio/mp4", "mp4");
        return -1;
    }
    if (n >= 12 && (memcmp(p, "RIFF", 4) == 0 || memcmp(p, "RF64", 4) == 0) && memcmp(p + 8, "WAVE", 4) == 0)
        return set(out, "audio/wav", "wav");
    return -1;
}
