"""Reader studies: does showing a map help readers? The design (who reads what, in which order), the
records (studies, readers, readings), and the multi-reader multi-case analysis of the results."""
