/* conc/visibility.h - export macro shared by every public header. */
#ifndef CONC_VISIBILITY_H
#define CONC_VISIBILITY_H

#if defined(CONC_STATIC_DEFINE)
#define CONC_EXTERN
#elif defined(__GNUC__)
#define CONC_EXTERN __attribute__((visibility("default")))
#else
#define CONC_EXTERN
#endif

#if defined(__GNUC__)
#define CONC_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define CONC_PRINTF(fmt, args)
#endif

#endif
