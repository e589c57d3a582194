/* Prints GStreamer's RFC 6381 codec string for a caps string (used by gen.sh). */
#include <gst/gst.h>
#include <gst/pbutils/pbutils.h>
#include <stdio.h>
int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  GstCaps *caps = gst_caps_from_string(argv[1]);
  if (!caps) { fprintf(stderr, "bad caps\n"); return 1; }
  gchar *s = gst_codec_utils_caps_get_mime_codec(caps);
  printf("%s\n", s ? s : "(null)");
  return 0;
}
