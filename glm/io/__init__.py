"""Files in and out: safe writes, FASTA genomes, variants (VCF/TSV), labelled sequence sets, coordinates."""
