// stb_image's implementation from Debian's header, for the instrumented fuzz build only (the
// product links Debian's libstb.so instead).
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>
