#ifndef OCIRUN_CAPS_H
#define OCIRUN_CAPS_H
#endif
