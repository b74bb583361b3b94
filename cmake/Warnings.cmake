# conc_warnings(target): the warning set every conc target builds with.
function(conc_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wshadow
    $<$<COMPILE_LANGUAGE:C>:-Wstrict-prototypes -Wmissing-prototypes>
    $<$<BOOL:${CONC_WERROR}>:-Werror>)
endfunction()
